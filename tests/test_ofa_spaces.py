"""The OFA spec files decode to the networks OFA itself builds.

For random subnets of OFAMobileNetV3 (width 1.0) and OFAProxylessNASNets (width 1.3), both with
ks [3, 5, 7], e [3, 4, 6] and d [2, 3, 4], every layer that runs, as OFA's code builds and runs
it (tests/ofa_nets.py, rewritten from mit-han-lab/once-for-all at f03b2673), is the layer
hwlat's ``space.network`` of the same config names: input size, channels, kernel, stride,
expanded width, SE width, activation and residual. Slots past a stage's depth are skip keys in
hwlat's network and run nothing in OFA's, so they are left out of the comparison.

Then the lookup-table keys: what OFA's MBv3LatencyTable and ProxylessNASLatencyTable query for
such a subnet (tests/consumers.py) is what models.ofa_keys names hwlat's layers, and reads back.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from models.layer_key import LayerKey, Op, parse
from models.ofa_config import from_ofa_config, to_ofa_config
from models.ofa_keys import OfaKeyError, OfaNetwork, ofa_name, parse_ofa_name
from models.search_space import Candidate, SearchSpace
from models.space_spec import load_spec
from tests.consumers import Mbv3Reference, ProxylessReference
from tests.ofa_nets import ElasticNet, RunLayer, ofa_mobilenetv3, ofa_proxyless, running_layers

SPACES = Path(__file__).resolve().parents[1] / "spaces"
KS, E, D = [3, 5, 7], [3, 4, 6], [2, 3, 4]
RESOLUTIONS = (128, 160, 192, 224)
CONFIGS_PER_RESOLUTION = 50
# OFA's activation names as hwlat's.
ACT = {"relu": "relu", "relu6": "relu6", "h_swish": "hswish"}


def mbv3_space() -> SearchSpace:
    return SearchSpace(load_spec(SPACES / "ofa_mbv3_d234_e346_k357_w1.0.yaml"))


def proxyless_space() -> SearchSpace:
    return SearchSpace(load_spec(SPACES / "ofa_proxyless_d234_e346_k357_w1.3.yaml"))


def mbv3_net() -> ElasticNet:
    return ofa_mobilenetv3(width_mult=1.0, ks_list=KS, expand_ratio_list=E, depth_list=D)


def proxyless_net() -> ElasticNet:
    return ofa_proxyless(width_mult=1.3, ks_list=KS, expand_ratio_list=E, depth_list=D)


CASES = {
    "ofa_mbv3_d234_e346_k357_w1.0": (mbv3_space, mbv3_net),
    "ofa_proxyless_d234_e346_k357_w1.3": (proxyless_space, proxyless_net),
}


def hwlat_layer(key: LayerKey) -> RunLayer:
    """A layer key in the terms of the rewrite (OFA's activation names read as hwlat's)."""
    if key.op is Op.MBCONV:
        return RunLayer(
            "mbconv",
            key.hw,
            key.cin,
            key.cout,
            key.kernel,
            key.stride,
            key.mid,
            key.se_channels,
            key.act.value,
            key.has_residual,
        )
    if key.op is Op.CONV:
        return RunLayer(
            "conv", key.hw, key.cin, key.cout, key.kernel, key.stride, act=key.act.value
        )
    if key.op is Op.POOL:
        return RunLayer("pool", key.hw, key.cin, key.cout)
    if key.op is Op.LOGITS:
        return RunLayer("logits", key.hw, key.cin, key.classes)
    raise AssertionError(f"{key}: no such layer in OFA's networks")


def ofa_layer(layer: RunLayer) -> RunLayer:
    return RunLayer(
        layer.op,
        layer.hw,
        layer.cin,
        layer.cout,
        layer.kernel,
        layer.stride,
        layer.mid,
        layer.se,
        ACT.get(layer.act, layer.act),
        layer.residual,
    )


def sampled_configs(net: ElasticNet, seed: int) -> list[dict[str, Any]]:
    """OFA's sample_active_subnet, per resolution, plus the smallest and largest subnets."""
    rng = random.Random(seed)
    slots = len(net.blocks) - 1
    stages = len(net.block_group_info)
    configs = []
    for r in RESOLUTIONS:
        configs.append(
            {"ks": [min(KS)] * slots, "e": [min(E)] * slots, "d": [min(D)] * stages, "r": [r]}
        )
        configs.append(
            {"ks": [max(KS)] * slots, "e": [max(E)] * slots, "d": [max(D)] * stages, "r": [r]}
        )
        for _ in range(CONFIGS_PER_RESOLUTION):
            configs.append({**net.sample_active_subnet(rng, KS, E, D), "r": [r]})
    return configs


def compare(space: SearchSpace, net: ElasticNet, config: dict[str, Any]) -> list[str]:
    """The differences between OFA's layers of ``config`` and hwlat's, one line each."""
    net.set_active_subnet(config["ks"], config["e"], config["d"])
    ofa = [
        ofa_layer(layer) for layer in running_layers(net.get_active_net_config(), config["r"][0])
    ]
    keys = [k for k in space.network(from_ofa_config(space, config)) if k.op is not Op.SKIP]
    ours = [hwlat_layer(k) for k in keys]
    problems = []
    if len(ofa) != len(ours):
        problems.append(f"{len(ofa)} layers run in OFA's subnet, {len(ours)} in hwlat's")
    for n, (theirs, mine, key) in enumerate(zip(ofa, ours, keys, strict=False)):
        if theirs != mine:
            fields = [
                f"{name} OFA {getattr(theirs, name)!r} hwlat {getattr(mine, name)!r}"
                for name in RunLayer.__dataclass_fields__
                if getattr(theirs, name) != getattr(mine, name)
            ]
            problems.append(f"layer {n} ({key}): {'; '.join(fields)}")
    return problems


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_layer_that_runs_is_the_layer_ofa_builds(name: str) -> None:
    make_space, make_net = CASES[name]
    space, net = make_space(), make_net()
    assert space.name == name
    checked = 0
    for config in sampled_configs(net, seed=len(name)):
        problems = compare(space, net, config)
        assert not problems, f"{config}:\n" + "\n".join(problems)
        checked += 1
    assert checked == len(RESOLUTIONS) * (CONFIGS_PER_RESOLUTION + 2)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_spec_offers_what_ofa_does(name: str) -> None:
    """Resolutions 128-224 (step 4, as OFA trains), one candidate per (kernel, expansion) and
    every depth, in each of OFA's block groups, and the same number of layer slots."""
    make_space, make_net = CASES[name]
    space, net = make_space(), make_net()
    assert space.resolutions == tuple(range(128, 225, 4))
    assert len(space.spec.stages) == len(net.block_group_info)
    for stage, group in zip(space.spec.stages, net.block_group_info, strict=True):
        assert max(stage.depths) == len(group)
        assert stage.depths == (tuple(D) if len(group) == max(D) else (len(group),))
        candidates = [Candidate.parse(label) for label in stage.candidates]
        assert sorted((c.kernel, c.expansion) for c in candidates) == [
            (k, e) for k in KS for e in E
        ]


def test_ofas_depth_is_clamped_to_the_last_group_of_proxylessnas() -> None:
    """OFA runs min(len(group), d) layers: d 4 on ProxylessNAS's one-layer last group is 1."""
    space, net = proxyless_space(), proxyless_net()
    slots = len(net.blocks) - 1
    config = {"ks": [5] * slots, "e": [4] * slots, "d": [4] * 6, "r": [224]}
    assert not compare(space, net, config)
    assert to_ofa_config(space, from_ofa_config(space, config))["d"] == [4, 4, 4, 4, 4, 1]


def test_the_rewrite_builds_ofas_widths() -> None:
    """Anchors from OFA's published subnets: MobileNetV3 w1.0 and ProxylessNAS w1.3."""
    mbv3 = mbv3_net()
    mbv3.set_active_subnet(7, 6, 4)
    layers = running_layers(mbv3.get_active_net_config(), 224)
    assert [layer.cout for layer in layers if layer.op == "mbconv"][::4] == [
        16,
        24,
        40,
        80,
        112,
        160,
    ]
    assert (layers[-4].cout, layers[-2].cout, layers[-1].cout) == (960, 1280, 1000)
    assert [(layer.mid, layer.se) for layer in layers[6:8]] == [(144, 40), (240, 64)]
    proxyless = proxyless_net()
    config = proxyless.get_active_net_config()
    assert config["first_conv"]["out_channels"] == 40
    assert [b["conv"]["out_channels"] for b in config["blocks"]][::4] == [24, 32, 56, 104, 128, 248]
    assert config["blocks"][-1]["conv"]["out_channels"] == 416
    assert config["feature_mix_layer"]["out_channels"] == 1664


def test_a_slot_past_the_depth_is_a_skip_of_the_stage_width() -> None:
    space = mbv3_space()
    slots = sum(max(s.depths) for s in space.spec.stages)
    keys = space.network(
        from_ofa_config(space, {"ks": [3] * slots, "e": [3] * slots, "d": [2] * 5, "r": [224]})
    )
    skips = [str(k) for k in keys if k.op is Op.SKIP]
    assert skips == [
        f"skip_hw{hw}_i{c}_o{c}"
        for hw, c in ((56, 24), (28, 40), (14, 80), (14, 112), (7, 160))
        for _ in range(2)
    ]


# -- the lookup-table keys of these networks ---------------------------------------------------


class Recording(dict[str, dict[str, float]]):
    """A lookup table that has every key (OFA's walk only reads ``lut[key]["mean"]``)."""

    def __missing__(self, key: str) -> dict[str, float]:
        return {"mean": 1.0}


@pytest.mark.parametrize("name", sorted(CASES))
def test_ofas_table_walk_queries_the_names_of_hwlats_layers(name: str) -> None:
    make_space, make_net = CASES[name]
    space, net = make_space(), make_net()
    mbv3 = "final_expand_layer" in net.get_active_net_config()
    network = OfaNetwork.MOBILENETV3 if mbv3 else OfaNetwork.PROXYLESS
    for config in sampled_configs(net, seed=7)[::5]:
        net.set_active_subnet(config["ks"], config["e"], config["d"])
        reference = (Mbv3Reference if mbv3 else ProxylessReference)(Recording())
        reference.predict_network_latency_given_config(net.get_active_net_config(), config["r"][0])
        keys = [k for k in space.network(from_ofa_config(space, config)) if k.op is not Op.SKIP]
        assert reference.queried == [ofa_name(k, network=network) for k in keys]
        assert [parse_ofa_name(n, network=network) for n in reference.queried] == keys


def test_every_mobilenetv3_variant_name_round_trips() -> None:
    variants = mbv3_space().variants()
    names = [ofa_name(k, network=OfaNetwork.MOBILENETV3) for k in variants]
    assert len(set(names)) == len(variants)
    assert [parse_ofa_name(n, network=OfaNetwork.MOBILENETV3) for n in names] == list(variants)


def test_mobilenetv3_keys_name_its_head_and_its_blocks() -> None:
    def named(key: str) -> str:
        return ofa_name(parse(key), network=OfaNetwork.MOBILENETV3)

    assert named("conv_hw224_i3_o16_k3_s2_hswish") == "Conv-input:224x224x3-output:112x112x16"
    assert named("mbconv_hw112_i16_o16_k3_e1_s1_relu") == (
        "expanded_conv-input:112x112x16-output:112x112x16-expand:16-kernel:3-stride:1"
        "-idskip:1-se:0-hs:0"
    )
    assert named("mbconv_hw56_i24_o40_k5_e6_s2_sem_relu") == (
        "expanded_conv-input:56x56x24-output:28x28x40-expand:144-kernel:5-stride:2"
        "-idskip:0-se:1-hs:0"
    )
    assert named("conv_hw7_i160_o960_k1_s1_hswish") == "Conv_1-input:7x7x160-output:7x7x960"
    assert named("pool_hw7_i960") == "AvgPool2D-input:7x7x960-output:1x1x960"
    assert named("conv_hw1_i960_o1280_k1_s1_hswish") == "Conv_2-input:1x1x960-output:1x1x1280"
    assert named("logits_hw1_i1280_c1000") == "Logits-input:1x1x1280-output:1000"


@pytest.mark.parametrize(
    ("key", "needle"),
    [
        ("mbconv_hw14_i80_o80_k3_e3_s1", "a relu6 block has no key there"),
        ("mbconv_hw14_i80_o80_k3_e3_s1_se_hswish", "SE a quarter of the input"),
        ("conv_hw224_i3_o16_k3_s2", "names only its h-swish convs"),
        ("skip_hw14_i80_o80", "skip costs nothing"),
    ],
)
def test_layers_without_a_mobilenetv3_key_are_refused(key: str, needle: str) -> None:
    with pytest.raises(OfaKeyError, match=needle):
        ofa_name(parse(key), network=OfaNetwork.MOBILENETV3)


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        (
            "expanded_conv-input:14x14x80-output:14x14x80-expand:3-kernel:3-stride:1-idskip:1",
            "this is a ProxylessNAS key",
        ),
        ("Conv_2-input:7x7x960-output:7x7x1280", "runs on the pooled 1x1 map"),
        ("Conv_1-input:1x1x960-output:1x1x1280", "runs on the pooled 1x1 map"),
        ("AvgPool2D-input:7x7x960-output:1x1x480", "gives 1x1x960"),
        ("head-input:7x7x160-feature:1280-output:1000", "not 'head'"),
    ],
)
def test_names_outside_the_mobilenetv3_table_are_refused(name: str, needle: str) -> None:
    with pytest.raises(OfaKeyError, match=needle):
        parse_ofa_name(name, network=OfaNetwork.MOBILENETV3)


def test_a_proxylessnas_table_still_refuses_the_mobilenetv3_head() -> None:
    with pytest.raises(OfaKeyError, match=r"AvgPool2D .* \(network=mobilenetv3\)"):
        parse_ofa_name("AvgPool2D-input:7x7x960-output:1x1x960")
    assert parse_ofa_name(
        "expanded_conv-input:14x14x80-output:14x14x80-expand:240-kernel:3-stride:1-idskip:1"
        "-se:1-hs:0"
    ) == parse("mbconv_hw14_i80_o80_k3_e3_s1_se")
