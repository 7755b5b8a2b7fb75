"""Runtime tables read the way their consumers' own code reads them, and the two formats'
round trips (pure functions; the service's routes are in test_predictors_api.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from models import LayerKey, Op, get_space, parse
from models.ofa_keys import OfaKeyError, needs_mbv3_keys, ofa_name, parse_ofa_name
from predictor.artifact import LayerEntry, PredictorArtifact
from predictor.compiled import compile_space
from predictor.formats import (
    OfaEntry,
    TableFormatError,
    from_ofa_yaml,
    from_spnas,
    read_ofa_yaml,
    to_ofa_yaml,
    to_spnas,
)
from tests.consumers import (
    SEED_SKIP_MS,
    ProxylessReference,
    mbv3_query_key,
    ofa_net_config,
    ofa_query_key,
    seed_block_runtimes,
)
from tests.fixtures.factories import covering_architectures

SEED = get_space("spnas-mobilenetv2-224")
SE = get_space("spnas-se-mobilenetv2-224")
TINY = get_space("tiny-64")
PIXEL1 = Path(__file__).resolve().parent / "data" / "spnas_pixel1_runtime_model.json"


def distinct_values(keys: list[LayerKey]) -> dict[str, OfaEntry]:
    """A different mean, variance and count per layer, so a wrong lookup cannot pass."""
    return {
        str(k): OfaEntry(mean_ms=0.1 * (i + 1) + 1e-3, var_ms2=1e-4 * (i + 1), count=20 + i)
        for i, k in enumerate(keys)
    }


# -- OFA's access pattern ------------------------------------------------------------------


def test_every_layer_of_the_seed_space_is_found_under_ofas_keys() -> None:
    keys = list(SEED.variants())
    values = distinct_values(keys)
    text = to_ofa_yaml(keys, values)
    # OFA loads the file with yaml.load; FullLoader is what its call meant before PyYAML 6.
    table = ProxylessReference(yaml.load(text, Loader=yaml.FullLoader))
    for arch in covering_architectures(SEED, 50, seed=3):
        expected = sum(values[str(k)].mean_ms for k in SEED.network(arch) if k.op is not Op.SKIP)
        got = table.predict_network_latency_given_config(ofa_net_config(SEED, arch), 224)
        assert got == pytest.approx(expected, rel=1e-12)
    # Every entry was reached by some network, and nothing else was asked for.
    assert set(table.queried) == set(table.lut)
    assert len(table.lut) == 45
    stem = table.lut["Conv-input:224x224x3-output:112x112x32"]
    assert stem["mean"] == values[str(keys[0])].mean_ms
    assert "Conv_1-input:7x7x320-output:7x7x1280" in table.lut
    assert "Logits-input:7x7x1280-output:1000" in table.lut
    first = "expanded_conv-input:112x112x32-output:112x112x16-expand:1-kernel:3-stride:1-idskip:0"
    assert first in table.lut


def test_each_entry_holds_mean_variance_and_count_as_proxylessnas_tables_do() -> None:
    keys = list(TINY.variants())
    values = distinct_values(keys)
    table = yaml.safe_load(to_ofa_yaml(keys, values))
    stem = table[ofa_query_key("Conv", [64, 64, 3], [32, 32, 16])]
    assert stem == {"count": 20, "mean": values[str(keys[0])].mean_ms, "var": 1e-4}
    block = ofa_query_key(
        "expanded_conv", [32, 32, 8], [16, 16, 16], expand=6, ks=5, stride=2, id_skip=0
    )
    assert table[block]["mean"] == values["mbconv_hw32_i8_o16_k5_e6_s2"].mean_ms
    assert table[ofa_query_key("Conv_1", [8, 8, 32], [8, 8, 128])]["count"] == 20 + len(keys) - 2
    assert ofa_query_key("Logits", [8, 8, 128], [10]) in table


def test_a_space_with_se_uses_mbv3_keys_for_every_block() -> None:
    keys = list(SE.variants())
    assert needs_mbv3_keys(keys)
    assert not needs_mbv3_keys(SEED.variants())
    with pytest.raises(OfaKeyError, match=r"no SE or h-swish; .*\(mbv3=True\)"):
        ofa_name(parse("mbconv_hw56_i24_o24_k5_e6_s1_se"))
    table = yaml.safe_load(to_ofa_yaml(keys, distinct_values(keys)))
    assert len(table) == 85
    plain = mbv3_query_key(
        [112, 112, 16], [56, 56, 24], mid=48, ks=3, stride=2, id_skip=0, se=0, h_swish=0
    )
    with_se = mbv3_query_key(
        [56, 56, 24], [56, 56, 24], mid=144, ks=5, stride=1, id_skip=1, se=1, h_swish=0
    )
    assert plain in table
    assert with_se in table
    assert parse_ofa_name(with_se) == parse("mbconv_hw56_i24_o24_k5_e6_s1_se")
    assert not any(name.endswith("-idskip:0") or name.endswith("-idskip:1") for name in table)


def test_mbv3_hswish_keys_parse_and_odd_expansions_are_refused() -> None:
    name = mbv3_query_key(
        [14, 14, 80], [14, 14, 80], mid=240, ks=3, stride=1, id_skip=1, se=0, h_swish=1
    )
    key = parse_ofa_name(name)
    assert key == parse("mbconv_hw14_i80_o80_k3_e3_s1_hswish")
    assert ofa_name(key, mbv3=True) == name
    with pytest.raises(OfaKeyError, match="expand:200 channels is not a whole multiple of the 80"):
        parse_ofa_name(name.replace("expand:240", "expand:200"))


# -- the seed's access pattern -------------------------------------------------------------


def test_every_block_of_the_seed_is_found_under_its_index() -> None:
    keys = list(SEED.variants())
    layers = {str(k): LayerEntry(0.1 * (i + 1)) for i, k in enumerate(keys)}
    compiled = compile_space(PredictorArtifact(layers=layers), SEED, version=1)
    first, last = str(SEED.prefix[-1]), str(SEED.suffix[0])
    exported = to_spnas(compiled, {first: layers[first].ms, last: layers[last].ms})
    runtime_lut = json.loads(json.dumps(exported))  # as the seed gets it: json.load of a file
    blocks = seed_block_runtimes(runtime_lut)
    assert len(blocks) == 22
    assert blocks[0] == [layers[first].ms] * 4
    assert blocks[21] == [layers[last].ms] * 4
    for position, slot in enumerate(SEED.layers):
        runtimes = blocks[position + 1]
        measured = [layers[str(slot.key(c))].ms for c in range(4)]
        assert runtimes[:4] == measured
        # skip is not in the table; the seed appends its own constant where a block has one
        assert runtimes[4:] == ([SEED_SKIP_MS] if slot.skippable else [])


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("space", [SEED, SE, TINY], ids=lambda s: s.name)
def test_ofa_import_of_an_export_is_the_identity(space: object) -> None:
    keys = list(space.variants())  # type: ignore[attr-defined]
    values = distinct_values(keys)
    text = to_ofa_yaml(keys, values)
    assert read_ofa_yaml(text) == {k: values[str(k)] for k in keys}
    assert to_ofa_yaml(read_ofa_yaml(text).keys(), values) == text
    artifact = from_ofa_yaml(text)
    assert {k: (v.ms, v.n, v.source) for k, v in artifact.layers.items()} == {
        str(k): (values[str(k)].mean_ms, values[str(k)].count, "imported") for k in keys
    }
    spreads = {k: (v.ms * v.spread_pct / 100) ** 2 for k, v in artifact.layers.items()}
    assert spreads == pytest.approx({str(k): values[str(k)].var_ms2 for k in keys}, rel=1e-12)


@pytest.mark.parametrize("key", [str(k) for k in (*SEED.variants(), *SE.variants())])
def test_every_variant_name_round_trips(key: str) -> None:
    layer = parse(key)
    for mbv3 in (False, True):
        if mbv3 or not needs_mbv3_keys([layer]):
            assert parse_ofa_name(ofa_name(layer, mbv3)) == layer


def test_seed_import_of_an_export_is_the_identity() -> None:
    table = json.loads(PIXEL1.read_text())
    artifact = from_spnas(table, SEED, constant_ms=19.5999)
    exported = to_spnas(compile_space(artifact, SEED, version=1), fixed={})
    assert from_spnas(exported, SEED, constant_ms=19.5999) == artifact
    assert exported == {block: table[block] for block in exported}
    assert sorted(exported, key=int) == [str(b) for b in range(1, 21)]


# -- tables written by others, and by earlier hwlat versions ------------------------------

# The layout of ProxylessNAS's published lookup tables (e.g. its Pixel table, read by OFA's
# ProxylessNASLatencyTable): count, mean and var per key. The numbers are made up.
PROXYLESS_TABLE = """\
Conv-input:224x224x3-output:112x112x32:
  count: 949
  mean: 4.4
  var: 0.16
Conv_1-input:7x7x320-output:7x7x1280:
  count: 949
  mean: 6.3
  var: 0.43
Logits-input:7x7x1280-output:1000:
  count: 949
  mean: 0.93
  var: 0.15
expanded_conv-input:112x112x32-output:112x112x16-expand:1-kernel:7-stride:1-idskip:0:
  count: 314
  mean: 11.2
  var: 0.18
expanded_conv-input:56x56x24-output:56x56x24-expand:6-kernel:7-stride:1-idskip:1:
  count: 393
  mean: 15.0
  var: 0.18
"""


def test_a_table_in_proxylessnas_layout_imports() -> None:
    layers = from_ofa_yaml(PROXYLESS_TABLE).layers
    assert {k: (v.ms, v.n) for k, v in layers.items()} == {
        "conv_hw224_i3_o32_k3_s2": (4.4, 949),
        "conv_hw7_i320_o1280_k1_s1": (6.3, 949),
        "logits_hw7_i1280_c1000": (0.93, 949),
        "mbconv_hw112_i32_o16_k7_e1_s1": (11.2, 314),
        "mbconv_hw56_i24_o24_k7_e6_s1": (15.0, 393),
    }
    stem = layers["conv_hw224_i3_o32_k3_s2"]
    assert stem.source == "imported"
    assert (stem.ms * stem.spread_pct / 100) ** 2 == pytest.approx(0.16)


def test_names_of_earlier_hwlat_exports_still_import() -> None:
    text = (
        "Conv-input:224x224x3-output:112x112x32-kernel:3: {mean: 2.0, std: 0.1, count: 30}\n"
        "head-input:7x7x320-feature:1280-output:1000: {mean: 1.5, std: 0.0, count: 30}\n"
        "expanded_conv-input:56x56x24-output:56x56x24-expand:3-kernel:5-stride:1-idskip:1-se:1:"
        " {mean: 0.5, std: 0.05, count: 30}\n"
    )
    layers = from_ofa_yaml(text).layers
    assert sorted(layers) == [
        "conv_hw224_i3_o32_k3_s2",
        "head_hw7_i320_o1280_c1000",
        "mbconv_hw56_i24_o24_k5_e3_s1_se",
    ]
    assert layers["mbconv_hw56_i24_o24_k5_e3_s1_se"].spread_pct == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("AvgPool2D-input:7x7x1280-output:1x1x1280: {mean: 1.0}\n", "AvgPool2D .* no hwlat"),
        ("Logits-input:7x7x1280-output:7x7x1000: {mean: 1.0}\n", "unknown lookup-table entry"),
        ("Conv_1-input:7x7x320-output:4x4x1280: {mean: 1.0}\n", "output 4x4"),
        (
            "expanded_conv-input:56x56x24-output:56x56x24-expand:3-kernel:3-stride:1-idskip:0:"
            " {mean: 1.0}\n",
            "idskip:0",
        ),
        (
            "expanded_conv-input:56x56x24-output:56x56x24-expand:3-kernel:4-stride:1-idskip:1:"
            " {mean: 1.0}\n",
            "k4",
        ),
        ("Conv-input:224x224x3-output:112x112x32: {mean: -2}\n", "mean -2"),
        ("Conv-input:224x224x3-output:112x112x32: {mean: 2, var: -1}\n", "var -1"),
        ("Conv-input:224x224x3-output:112x112x32: {mean: 2, count: true}\n", "count True"),
        ("Conv-input:224x224x3-output:112x112x32: 2.0\n", "expected {mean"),
        (
            "Conv-input:224x224x3-output:112x112x32: {mean: 2}\n"
            "Conv-input:224x224x3-output:112x112x32-kernel:3: {mean: 2}\n",
            "name the same layer",
        ),
        ("[1, 2]\n", "mapping"),
        ("{unclosed\n", "not YAML"),
    ],
)
def test_bad_ofa_tables_name_the_entry(text: str, needle: str) -> None:
    with pytest.raises(TableFormatError, match=needle):
        from_ofa_yaml(text)


@pytest.mark.parametrize(
    ("key", "needle"),
    [
        ("head_hw7_i320_o1280_c1000", "as Conv_1 and Logits; profile conv_hw7_i320_o1280_k1_s1"),
        ("mbconv_hw14_i80_o80_k3_e3_s1_relu", "relu block has no key"),
        ("conv_hw224_i3_o32_k5_s2", "only the 3x3 stem"),
        ("skip_hw14_i80_o80", "skip costs nothing"),
        ("pool_hw7_i960", r"global pool on its own \(MBv3LatencyTable's AvgPool2D\) has no key"),
        ("mbconv_hw14_i80_o80_k3_e3_s1_sem", r"se:1 reads back as hwlat's 'se'.*64 channels"),
    ],
)
def test_layers_without_an_ofa_key_are_refused_saying_why(key: str, needle: str) -> None:
    with pytest.raises(OfaKeyError, match=needle):
        ofa_name(parse(key))
    with pytest.raises(TableFormatError, match=needle):
        to_ofa_yaml([parse(key)], {key: OfaEntry(1.0, 0.0, 1)})


def test_export_values_are_exact_through_yaml() -> None:
    # PyYAML writes floats with repr, so no digit is lost on the way to OFA.
    value = float(np.nextafter(1.0, 2.0))
    key = parse("logits_hw7_i1280_c1000")
    text = to_ofa_yaml([key], {str(key): OfaEntry(value, value / 3, 7)})
    assert read_ofa_yaml(text)[key] == OfaEntry(value, value / 3, 7)
