"""Search spaces: the seed's shape, decode/encode, validation, sampling, variants, JSON."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.layer_key import Op, parse
from models.search_space import ElasticSpace, InvalidArchitecture, SearchSpace
from models.space_spec import SpecError
from models.spaces import BUILTIN, UnknownSearchSpace, get_space

SEED = get_space("spnas-mobilenetv2-224")


def test_seed_space_matches_the_paper() -> None:
    assert SEED.num_layers == 20
    firsts = [0, 4, 8, 12, 16]
    assert [SEED.layers[i].cout for i in firsts] == [24, 40, 80, 96, 192]
    assert [SEED.layers[i].stride for i in firsts] == [2, 2, 2, 1, 2]
    for n, slot in enumerate(SEED.layers):
        labels = [c.label for c in slot.candidates]
        assert labels[:4] == ["k3e3", "k3e6", "k5e3", "k5e6"]
        assert slot.skippable == (n not in firsts)
    assert sum(slot.skippable for slot in SEED.layers) == 15
    assert [str(k) for k in SEED.prefix] == [
        "conv_hw224_i3_o32_k3_s2",
        "mbconv_hw112_i32_o16_k3_e1_s1",
    ]
    assert [str(k) for k in SEED.suffix] == [
        "mbconv_hw7_i192_o320_k3_e6_s1",
        "conv_hw7_i320_o1280_k1_s1",
        "logits_hw7_i1280_c1000",
    ]


def test_seed_space_has_the_forty_searchable_variants_plus_five_fixed_parts() -> None:
    variants = SEED.variants()
    assert len(variants) == 45
    assert len(set(variants)) == 45
    assert all(k.op is not Op.SKIP for k in variants)
    with_skip = SEED.variants(include_skip=True)
    assert {k for k in with_skip if k.op is Op.SKIP} == {
        parse("skip_hw56_i24_o24"),
        parse("skip_hw28_i40_o40"),
        parse("skip_hw14_i80_o80"),
        parse("skip_hw14_i96_o96"),
        parse("skip_hw7_i192_o192"),
    }


def test_decode_threads_resolution_and_channels() -> None:
    keys = SEED.decode([3] * 20)
    assert str(keys[0]) == "mbconv_hw112_i16_o24_k5_e6_s2"
    assert str(keys[1]) == "mbconv_hw56_i24_o24_k5_e6_s1"
    assert str(keys[16]) == "mbconv_hw14_i96_o192_k5_e6_s2"
    assert str(keys[19]) == "mbconv_hw7_i192_o192_k5_e6_s1"
    skipped = SEED.decode([0, 4, 4, 4] * 5)
    assert str(skipped[1]) == "skip_hw56_i24_o24"
    network = SEED.network([0] * 20)
    assert len(network) == 25  # stem, first block, 20 searchable, last block, Conv_1, Logits
    for before, after in itertools.pairwise(network):
        assert (after.hw, after.cin) == (before.hw_out, before.cout)


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=50)
def test_encode_inverts_decode(seed: int) -> None:
    arch = SEED.sample(1, seed)[0]
    assert SEED.encode(SEED.decode(arch)) == tuple(int(i) for i in arch)
    assert SEED.encode([str(k) for k in SEED.decode(arch)]) == tuple(int(i) for i in arch)


def test_skip_where_not_allowed_names_the_position() -> None:
    arch = [0] * 20
    arch[4] = 4  # first layer of stage 2 has only four candidates
    with pytest.raises(InvalidArchitecture, match="position 4") as info:
        SEED.validate(arch)
    assert info.value.position == 4


@pytest.mark.parametrize(
    ("arch", "match"),
    [
        ([0] * 19, "19 entries"),
        ([0] * 21, "21 entries"),
        ([0] * 19 + [-1], "position 19"),
        ([0, 1.5] + [0] * 18, "position 1"),
        ([0, True] + [0] * 18, "position 1"),
    ],
)
def test_malformed_architectures_are_rejected(arch: list[object], match: str) -> None:
    with pytest.raises(InvalidArchitecture, match=match):
        SEED.validate(arch)  # type: ignore[arg-type]


def test_encode_rejects_a_key_that_is_not_a_candidate() -> None:
    keys = list(SEED.decode([0] * 20))
    keys[2] = parse("mbconv_hw56_i24_o24_k7_e6_s1")
    with pytest.raises(InvalidArchitecture, match="position 2"):
        SEED.encode(keys)


def test_sampling_is_deterministic_per_seed_and_covers_every_candidate() -> None:
    first = SEED.sample(500, seed=7)
    assert np.array_equal(first, SEED.sample(500, seed=7))
    assert not np.array_equal(first, SEED.sample(500, seed=8))
    for position, count in enumerate(SEED.candidate_counts):
        assert set(first[:, position].tolist()) == set(range(count))
    for arch in first[:50]:
        SEED.validate(arch)


def test_sampling_is_roughly_uniform() -> None:
    archs = SEED.sample(20_000, seed=1)
    counts = np.bincount(archs[:, 1], minlength=5)
    assert counts.min() > 0.9 * 20_000 / 5


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_spaces_round_trip_through_json(name: str) -> None:
    space = get_space(name)
    again = SearchSpace.from_json(space.to_json())
    assert again == space
    assert json.loads(space.to_json())["name"] == name


def test_se_space_keeps_seed_indices_and_adds_se_variants() -> None:
    se = get_space("spnas-se-mobilenetv2-224")
    assert se.candidate_counts[0] == 8
    assert se.candidate_counts[1] == 9
    assert se.decode([3] * 20)[:2] == SEED.decode([3] * 20)[:2]
    assert se.decode([7] * 20)[0].se
    assert len(se.variants()) == 85


def test_unknown_space_lists_the_known_ones() -> None:
    with pytest.raises(UnknownSearchSpace, match="spnas-mobilenetv2-224"):
        get_space("nope")


def test_a_spec_with_a_skip_on_a_shape_changing_layer_is_rejected_naming_the_field() -> None:
    data = SEED.to_dict()
    data["stages"][2]["candidates"].append("skip")
    with pytest.raises(SpecError, match=r"stages\.2\.candidates\.4: skip: a stage's first layer"):
        SearchSpace.from_dict(data)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["stages"][1].update(widths=[]), r"stages\.1\.widths: empty"),
        (lambda d: d["stages"][0].update(depths=[]), r"stages\.0\.depths: empty"),
        (lambda d: d["stages"][0].update(candidates=[]), r"stages\.0\.candidates: empty"),
        (lambda d: d["stages"][3].update(candidates=["k4x"]), r"stages\.3\.candidates\.0"),
        (lambda d: d["stages"][3].update(candidates=["k11e3"]), r"kernel 11: exporters build"),
        (lambda d: d["input"].update(resolutions=[4096]), r"input\.resolutions\.0: 4096"),
        (lambda d: d["stages"][0].update(widths=[99999]), r"stages\.0\.widths\.0: 99999"),
        (lambda d: d["stages"][0].update(stride=3), r"stages\.0\.stride: 3"),
        (lambda d: d["head"].append({"op": "conv", "out": 8}), r"head\.3: follows the classifier"),
        (lambda d: d.pop("stages"), r"stages"),
        (lambda d: d["stem"][0].update(op="dense"), r"stem\.0\.op"),
        (lambda d: d.update(name="Has Spaces"), r"name: 'Has Spaces'"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(change: object, field: str) -> None:
    data = SEED.to_dict()
    change(data)  # type: ignore[operator]
    with pytest.raises(SpecError, match=field):
        SearchSpace.from_dict(data)


def test_a_space_without_a_stem_starts_from_the_input() -> None:
    space = SearchSpace.from_dict(
        {
            "name": "mini",
            "input": {"channels": 8, "resolutions": [32]},
            "stages": [
                {"widths": [8], "depths": [2], "stride": 1, "candidates": ["k3e3"], "skip": True}
            ],
        }
    )
    assert [str(k) for k in space.variants(include_skip=True)] == [
        "mbconv_hw32_i8_o8_k3_e3_s1",
        "skip_hw32_i8_o8",
    ]
    assert space.size == 2
    # Its first layer has one choice and so takes no entry: not a space of fixed layers.
    with pytest.raises(ElasticSpace, match="single-choice layers"):
        _ = space.layers
