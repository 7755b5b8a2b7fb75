"""The OFA drop-in estimator against a real `hwlat serve` process: the same numbers as
POST /v1/predict and as OFA's own lookup over our exported table, estimates flagged, one
request for a whole space, and errors instead of KeyErrors. OFA's MobileNetV3 and ProxylessNAS
subnets (net configs from the rewrite of OFA's networks in tests/ofa_nets.py) walk to the
layers of the spec files' spaces, and their latency is those layers' sum, as OFA's own
MBv3LatencyTable would add it up."""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from latency_api import HwlatClient, ServiceError
from latency_api.ofa import EstimatedLatencyWarning, HwlatLatencyTable, PredictorChangedWarning
from latency_api.schemas.devices import DeviceIn
from latency_api.schemas.measurements import LayerMeasurementIn, NetworkMeasurementIn
from models import LayerKey, Op, SearchSpace, get_space, parse
from models.ofa_config import from_ofa_config
from models.ofa_keys import OfaNetwork, ofa_name
from models.space_spec import load_spec
from tests.consumers import Mbv3Reference, ProxylessReference, ofa_net_config
from tests.fixtures.factories import (
    HOST_DEVICE,
    covering_architectures,
    layer_measurement,
    network_measurement,
)
from tests.fixtures.services import Service
from tests.ofa_nets import ElasticNet, ofa_mobilenetv3, ofa_proxyless

# Tests that look for the estimate warnings catch them; elsewhere they are expected noise.
pytestmark = pytest.mark.filterwarnings("ignore::latency_api.ofa.EstimatedLatencyWarning")

SEED = get_space("spnas-mobilenetv2-224")
# Never measured on the device: the regression must answer for them, and say so.
UNMEASURED = ("mbconv_hw28_i40_o40_k5_e6_s1", "mbconv_hw14_i96_o96_k5_e3_s1")
CALIBRATION_A, CALIBRATION_B = 1.1, 0.4
SPEC_DIR = Path(__file__).resolve().parents[1] / "spaces"
MBV3 = SearchSpace(load_spec(SPEC_DIR / "ofa_mbv3_d234_e346_k357_w1.0.yaml"))
PROXYLESS = SearchSpace(load_spec(SPEC_DIR / "ofa_proxyless_d234_e346_k357_w1.3.yaml"))
KS, E, D = [3, 5, 7], [3, 4, 6], [2, 3, 4]


def layer_ms(key: LayerKey) -> float:
    """A cost that a linear regression over the layer features can learn."""
    return 2e-6 * key.macs + 1e-8 * key.activation_bytes + 0.02


def sum_ms(arch: list[int]) -> float:
    return sum(layer_ms(k) for k in SEED.network(arch) if k.op is not Op.SKIP)


def non_skip_keys(arch: list[int]) -> list[str]:
    return [str(k) for k in SEED.network(arch) if k.op is not Op.SKIP]


class CountingTransport(httpx.BaseTransport):
    """The real transport, counting predict requests."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.predicts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/predict":
            self.predicts += 1
        return self.inner.handle_request(request)


def profile(client: HwlatClient, name: str, scale: float = 1.0) -> int:
    """A device with every seed variant measured but UNMEASURED, calibrated networks, fitted."""
    device = client.register_device(
        DeviceIn.model_validate({**HOST_DEVICE, "name": name, "model": name})
    )
    layers = [
        LayerMeasurementIn.model_validate(layer_measurement(str(k), scale * layer_ms(k)))
        for k in SEED.variants()
        if str(k) not in UNMEASURED
    ]
    client.upload_layers(device.id, layers)
    archs = [[int(i) for i in a] for a in SEED.sample(12, seed=5)]
    networks = [
        NetworkMeasurementIn.model_validate(
            network_measurement(a, CALIBRATION_A * scale * sum_ms(a) + CALIBRATION_B)
        )
        for a in archs
    ]
    client.upload_networks(device.id, networks)
    client.fit_predictor(device.id)
    return device.id


@pytest.fixture(scope="module")
def ofa_device(service: Service) -> int:
    """The module's device on the module's service: profiled, calibrated and fitted."""
    with service.api() as client:
        return profile(client, "ofa-host")


@pytest.fixture
def client(service: Service) -> Iterator[HwlatClient]:
    with HwlatClient(service.url, service.token) as http:
        yield http


def test_a_network_is_the_sum_post_predict_gives_for_its_layers(
    ofa_device: int, client: HwlatClient
) -> None:
    table = HwlatLatencyTable(client, ofa_device)
    archs = covering_architectures(SEED, 15, seed=21)
    got = [table.predict_network_latency_given_config(ofa_net_config(SEED, a), 224) for a in archs]
    served = client.predict_layers(ofa_device, [non_skip_keys(a) for a in archs])
    assert got == pytest.approx(served.latency_ms, rel=1e-12)
    assert not set(non_skip_keys(archs[0])) & set(UNMEASURED)
    assert got[0] == pytest.approx(sum_ms(archs[0]), rel=1e-9)


def test_calibrated_answers_are_post_predict_of_the_architecture(
    ofa_device: int, client: HwlatClient
) -> None:
    table = HwlatLatencyTable(client, ofa_device, space=SEED.name, calibrated=True)
    archs = covering_architectures(SEED, 15, seed=21)
    got = [table.predict_network_latency_given_config(ofa_net_config(SEED, a), 224) for a in archs]
    served = client.predict(ofa_device, SEED.name, archs)
    assert got == pytest.approx(served.latency_ms, rel=1e-12)
    plain = client.predict_layers(ofa_device, [non_skip_keys(a) for a in archs])
    assert got == pytest.approx(
        [CALIBRATION_A * s + CALIBRATION_B for s in plain.latency_ms], rel=1e-6
    )


def test_it_answers_what_ofas_own_lookup_reads_from_the_exported_table(
    ofa_device: int, client: HwlatClient
) -> None:
    exported = client.runtime_table_file(ofa_device, SEED.name, "ofa")
    reference = ProxylessReference(yaml.safe_load(exported))
    table = HwlatLatencyTable(client, ofa_device, space=SEED.name)
    for arch in covering_architectures(SEED, 15, seed=21):
        config = ofa_net_config(SEED, arch)
        assert table.predict_network_latency_given_config(config) == pytest.approx(
            reference.predict_network_latency_given_config(config), rel=1e-12
        )
    # Both query forms, as ProxylessNASLatencyTable and MBv3LatencyTable ask.
    block = ([56, 56, 24], [28, 28, 40])
    proxyless = table.query("expanded_conv", *block, expand=6, ks=5, stride=2, id_skip=0)
    mbv3 = table.query("expanded_conv", *block, mid=144, ks=5, stride=2, id_skip=0, se=0, h_swish=0)
    assert proxyless == mbv3 == pytest.approx(layer_ms(parse("mbconv_hw56_i24_o40_k5_e6_s2")))
    assert table.query("Conv", [224, 224, 3], [112, 112, 32]) == pytest.approx(
        layer_ms(parse("conv_hw224_i3_o32_k3_s2"))
    )
    assert table.query("Conv_1", [7, 7, 320], [7, 7, 1280]) == pytest.approx(
        layer_ms(parse("conv_hw7_i320_o1280_k1_s1"))
    )
    assert table.query("Logits", [7, 7, 1280], [1000]) == pytest.approx(
        layer_ms(parse("logits_hw7_i1280_c1000"))
    )


def test_a_layer_never_measured_is_estimated_and_flagged_once(
    ofa_device: int, client: HwlatClient
) -> None:
    table = HwlatLatencyTable(client, ofa_device)
    args = (
        "expanded_conv",
        [28, 28, 40],
        [28, 28, 40],
        6,
        5,
        1,
        1,
    )
    with pytest.warns(EstimatedLatencyWarning, match=f"{UNMEASURED[0]} was never measured"):
        first = table.query(*args)
    assert table.estimated_layers == {UNMEASURED[0]}
    served = client.predict_layers(ofa_device, [[UNMEASURED[0]]])
    assert first == served.latency_ms[0]
    assert [e.layer_key for e in served.estimated_layers] == [UNMEASURED[0]]
    assert first > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second ask of the same layer warns no more
        assert table.query(*args) == first


def test_a_whole_space_is_one_request_then_answered_from_the_cache(
    ofa_device: int, service: Service
) -> None:
    transport = CountingTransport()
    with HwlatClient(service.url, service.token, transport=transport) as counted:
        with pytest.warns(EstimatedLatencyWarning):
            table = HwlatLatencyTable(counted, ofa_device, space=SEED.name)
        assert transport.predicts == 1
        assert table.estimated_layers == set(UNMEASURED)
        for arch in covering_architectures(SEED, 15, seed=21):
            table.predict_network_latency_given_config(ofa_net_config(SEED, arch))
        assert transport.predicts == 1


def test_the_one_line_switch_in_ofa_style_code(ofa_device: int, service: Service) -> None:
    class LatencyModel:
        """As OFA's ProxylessNASLatencyModel keeps its tables, one per image size."""

        def __init__(self) -> None:
            self.latency_tables: dict[int, Any] = {}

        def get_efficiency(self, net_config: dict[str, Any], image_size: int) -> float:
            table = self.latency_tables[image_size]
            latency: float = table.predict_network_latency_given_config(net_config, image_size)
            return latency

    model = LatencyModel()
    # The line: in place of ProxylessNASLatencyTable(url=".../224_lookup_table.yaml").
    model.latency_tables[224] = HwlatLatencyTable(
        service.url, ofa_device, token=service.token, space=SEED.name
    )
    with model.latency_tables[224] as table:
        arch = covering_architectures(SEED, 15, seed=21)[0]
        config = ofa_net_config(SEED, arch)
        assert model.get_efficiency(config, 224) == pytest.approx(sum_ms(arch), rel=1e-9)

        class Net:  # what predict_network_latency reads of an OFA network object
            def __init__(self, config: dict[str, Any]) -> None:
                self.config = config

        assert table.predict_network_latency(Net(config)) == model.get_efficiency(config, 224)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (
            lambda t: t.query("AvgPool2D", [7, 7, 960], [1, 1, 960]),
            "hwlat cannot answer 'AvgPool2D-input:7x7x960-output:1x1x960'",
        ),
        (
            lambda t: t.query("expanded_conv", [56, 56, 24], [28, 28, 40], ks=5, stride=2),
            "id_skip, expand missing",
        ),
        (
            lambda t: t.query("Conv", [224, 224, 3], [112, 112, 32], kernel=3),
            "unexpected keyword",
        ),
        (
            lambda t: t.query("expanded_conv", [56, 56, 24], [56, 56, 24], 6, 5, 1, 0),
            "idskip:0 does not fit",
        ),
    ],
)
def test_bad_queries_raise_saying_why_not_keyerror(
    ofa_device: int, client: HwlatClient, call: Any, needle: str
) -> None:
    table = HwlatLatencyTable(client, ofa_device)
    with pytest.raises((ValueError, TypeError), match=needle):  # a KeyError is neither
        call(table)


def test_calibration_is_only_applied_to_networks_of_its_space(
    ofa_device: int, client: HwlatClient
) -> None:
    with pytest.raises(ValueError, match="pass space="):
        HwlatLatencyTable(client, ofa_device, calibrated=True)
    tiny = get_space("tiny-64")
    table = HwlatLatencyTable(client, ofa_device, space=SEED.name, calibrated=True)
    with pytest.raises(ValueError, match="not one of spnas-mobilenetv2-224"):
        table.predict_network_latency_given_config(ofa_net_config(tiny, [0] * 4), 64)


def test_a_device_without_a_predictor_is_the_services_error(client: HwlatClient) -> None:
    device = client.register_device(
        DeviceIn.model_validate({**HOST_DEVICE, "name": "bare", "model": "bare"})
    )
    table = HwlatLatencyTable(client, device.id)
    with pytest.raises(ServiceError) as raised:
        table.query("Conv", [224, 224, 3], [112, 112, 32])
    assert raised.value.status == 409


def test_a_new_predictor_version_drops_the_cache(client: HwlatClient) -> None:
    device = profile(client, "refit", scale=1.0)
    table = HwlatLatencyTable(client, device)
    stem = ("Conv", [224, 224, 3], [112, 112, 32])
    before = table.query(*stem)
    assert table.predictor_version == 1
    profile(client, "refit", scale=3.0)  # the same device: more measurements, version 2
    with pytest.warns(PredictorChangedWarning, match="from v1 to v2"):
        table.query("Conv_1", [7, 7, 320], [7, 7, 1280])
    assert table.predictor_version == 2
    after = table.query(*stem)
    assert after == client.predict_layers(device, [["conv_hw224_i3_o32_k3_s2"]]).latency_ms[0]
    assert after > before


# -- OFA's elastic networks ---------------------------------------------------------------------


def ofa_subnets(net: ElasticNet, count: int, seed: int) -> list[tuple[dict[str, Any], Any]]:
    """``count`` subnets as OFA samples them, at resolutions across 128-224: each as its
    {ks, e, d, r} and the net config ``get_active_net_config()`` gives for it."""
    rng = random.Random(seed)
    subnets = []
    for n in range(count):
        config = {**net.sample_active_subnet(rng, KS, E, D), "r": [128 + 4 * (n * 7 % 25)]}
        subnets.append((config, net.get_active_net_config()))
    return subnets


def mbv3_net() -> ElasticNet:
    return ofa_mobilenetv3(width_mult=1.0, ks_list=KS, expand_ratio_list=E, depth_list=D)


def proxyless_net() -> ElasticNet:
    return ofa_proxyless(width_mult=1.3, ks_list=KS, expand_ratio_list=E, depth_list=D)


def running(space: SearchSpace, config: dict[str, Any]) -> list[LayerKey]:
    return [k for k in space.network(from_ofa_config(space, config)) if k.op is not Op.SKIP]


@pytest.mark.parametrize(
    ("space", "net"), [(MBV3, mbv3_net), (PROXYLESS, proxyless_net)], ids=["mbv3", "proxyless"]
)
def test_an_ofa_subnets_net_config_walks_to_the_layers_of_its_space(
    ofa_device: int, client: HwlatClient, space: SearchSpace, net: Any
) -> None:
    plain = HwlatLatencyTable(client, ofa_device)  # no space: walking asks nothing
    with_space = HwlatLatencyTable(client, ofa_device, space=space)
    for config, net_config in ofa_subnets(net(), 60, seed=3):
        keys = running(space, config)
        assert plain.network_keys(net_config, config["r"][0]) == keys
        assert with_space.ofa_config_keys(config) == keys


def test_a_mobilenetv3_subnet_is_the_sum_ofas_own_table_walk_gives(
    ofa_device: int, client: HwlatClient
) -> None:
    table = HwlatLatencyTable(client, ofa_device, space=MBV3)
    assert table.network is OfaNetwork.MOBILENETV3
    subnets = ofa_subnets(mbv3_net(), 12, seed=11)
    served = client.predict_layers(
        ofa_device, [[str(k) for k in running(MBV3, config)] for config, _ in subnets]
    )
    # OFA's own MBv3LatencyTable over a table of the service's values, keyed as OFA keys them.
    variants = MBV3.variants()
    each = client.predict_layers(ofa_device, [[str(k)] for k in variants])
    values = {
        ofa_name(key, network=OfaNetwork.MOBILENETV3): {"mean": ms}
        for key, ms in zip(variants, each.latency_ms, strict=True)
    }
    for (config, net_config), expected in zip(subnets, served.latency_ms, strict=True):
        size = config["r"][0]
        got = table.predict_network_latency_given_config(net_config, size)
        assert got == pytest.approx(expected, rel=1e-12)
        assert table.predict_ofa_config(config) == got
        reference = Mbv3Reference(values).predict_network_latency_given_config(net_config, size)
        assert got == pytest.approx(reference, rel=1e-12)
    arch_dict = {k: v for k, v in subnets[0][0].items() if k != "r"}
    arch_dict["image_size"] = subnets[0][0]["r"][0]  # as OFA's search hands it over
    assert table.predict_ofa_config(arch_dict) == pytest.approx(served.latency_ms[0], rel=1e-12)


def test_every_layer_of_ofas_mobilenetv3_is_answered(service: Service) -> None:
    """All 1,257 layer variants of the space in one request, none refused (the device measured
    none of them: each is the regression's estimate, and listed as one)."""
    transport = CountingTransport()
    with HwlatClient(service.url, service.token, transport=transport) as counted:
        device = profile(counted, "ofa-mbv3-estimates")
        transport.predicts = 0
        table = HwlatLatencyTable(counted, device, space=MBV3)
        assert transport.predicts == 1
        variants = {str(k) for k in MBV3.variants()}
        assert table.estimated_layers == variants - {str(k) for k in SEED.variants()}
        net = mbv3_net()
        for ks, e, d, r in ((3, 3, 2, 128), (7, 6, 4, 224)):
            net.set_active_subnet(ks, e, d)
            config = net.get_active_net_config()
            assert table.predict_network_latency_given_config(config, r) > 0
        assert transport.predicts == 1  # every layer came with the space's one request


def test_mobilenetv3_queries_read_keys_as_its_table_holds_them(
    ofa_device: int, client: HwlatClient
) -> None:
    table = HwlatLatencyTable(client, ofa_device, network="mobilenetv3")

    def value(key: str) -> float:
        return client.predict_layers(ofa_device, [[key]]).latency_ms[0]

    assert table.query("AvgPool2D", [7, 7, 960], [1, 1, 960]) == value("pool_hw7_i960")
    assert table.query("Conv_2", [1, 1, 960], [1, 1, 1280]) == value(
        "conv_hw1_i960_o1280_k1_s1_hswish"
    )
    block = ([28, 28, 40], [28, 28, 40])
    args: dict[str, Any] = {"mid": 160, "ks": 5, "stride": 1, "id_skip": 1, "se": 1, "h_swish": 0}
    assert table.query("expanded_conv", *block, **args) == value(
        "mbconv_hw28_i40_o40_k5_e4_s1_sem_relu"
    )
    # ProxylessNAS's reading of the same key: ReLU6, SE a quarter of the input.
    proxyless = HwlatLatencyTable(client, ofa_device)
    assert proxyless.network is OfaNetwork.PROXYLESS
    assert proxyless.query("expanded_conv", *block, **args) == value(
        "mbconv_hw28_i40_o40_k5_e4_s1_se"
    )


def test_ofa_configs_need_a_space_and_calibration_a_fixed_one(
    ofa_device: int, client: HwlatClient
) -> None:
    config = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": [224]}
    with pytest.raises(ValueError, match="pass space="):
        HwlatLatencyTable(client, ofa_device).predict_ofa_config(config)
    with pytest.raises(ValueError, match="an elastic space has none"):
        HwlatLatencyTable(client, ofa_device, space=MBV3, calibrated=True)
    with pytest.raises(ValueError, match=r"r \[225\]: .* takes one of"):
        HwlatLatencyTable(client, ofa_device, space=MBV3).predict_ofa_config({**config, "r": [225]})


def test_the_service_predicts_ofa_configs_of_a_registered_space_as_their_architectures(
    ofa_device: int, client: HwlatClient
) -> None:
    client.register_space(MBV3.spec)
    rng = random.Random(5)
    configs = [
        {
            "ks": [rng.choice([3, 5, 7]) for _ in range(20)],
            "e": [rng.choice([3, 4, 6]) for _ in range(20)],
            "d": [rng.choice([2, 3, 4]) for _ in range(5)],
            "r": rng.choice([128, 160, 192, 224]),
        }
        for _ in range(12)
    ]
    by_config = client.predict_ofa(ofa_device, MBV3.name, configs)
    archs = [list(from_ofa_config(MBV3, c)) for c in configs]
    by_arch = client.predict(ofa_device, MBV3.name, archs)
    assert by_config.latency_ms == pytest.approx(by_arch.latency_ms, rel=1e-12)
    # This device profiled the seed space only: every OFA layer is the regression's estimate.
    assert by_config.estimated_count == [
        sum(k.op is not Op.SKIP for k in MBV3.network(a)) for a in archs
    ]
    with pytest.raises(ServiceError, match=r"ofa_configs\[0\]"):
        client.predict_ofa(ofa_device, MBV3.name, [{**configs[0], "d": [2] * 4}])


def test_an_ofa_mobilenetv3_table_is_written_and_read_with_mbv3_keys(
    ofa_device: int, client: HwlatClient
) -> None:
    client.register_space(MBV3.spec)
    text = client.runtime_table_file(ofa_device, MBV3.name, "ofa")
    table = yaml.safe_load(text)
    assert len(table) == len(MBV3.variants())
    names = set(table)
    assert any(n.startswith("AvgPool2D-") for n in names)
    assert any(n.startswith("Conv_2-input:1x1x960") for n in names)
    assert any(n.startswith("expanded_conv-") and n.endswith("-se:1-hs:0") for n in names)
    # Read back as OFA's MobileNetV3 table: every entry is the layer it was written for.
    fresh = client.register_device(
        DeviceIn(name="ofa-import", kind="host", runtime="litert", runtime_version="import")
    )
    imported = client.import_runtime_table(fresh.id, text, space=MBV3.name, format="ofa")
    assert imported.metrics["n_layers"] == len(MBV3.variants())
    again = yaml.safe_load(client.runtime_table_file(fresh.id, MBV3.name, "ofa"))
    assert {n: row["mean"] for n, row in again.items()} == pytest.approx(
        {n: row["mean"] for n, row in table.items()}
    )
