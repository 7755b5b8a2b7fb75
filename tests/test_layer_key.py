"""Layer keys: round-trip, validation and analytic cost."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.layer_key import Activation, LayerKey, Op, parse

activations = st.sampled_from(list(Activation))
channels = st.integers(1, 2048)
resolutions = st.integers(1, 512)


@st.composite
def layer_keys(draw: st.DrawFn) -> LayerKey:
    op = draw(st.sampled_from(list(Op)))
    hw = draw(resolutions)
    cin = draw(channels)
    if op is Op.SKIP:
        return LayerKey(Op.SKIP, hw, cin, cin)
    if op is Op.LOGITS:
        classes = draw(st.integers(1, 10_000))
        return LayerKey(Op.LOGITS, hw, cin, classes, classes=classes)
    cout = draw(channels)
    act = draw(activations)
    if op is Op.HEAD:
        return LayerKey(Op.HEAD, hw, cin, cout, classes=draw(st.integers(1, 10_000)), act=act)
    kernel = draw(st.integers(0, 5)) * 2 + 1
    stride = draw(st.sampled_from([1, 2]))
    if op is Op.CONV:
        return LayerKey(Op.CONV, hw, cin, cout, kernel=kernel, stride=stride, act=act)
    return LayerKey(
        Op.MBCONV,
        hw,
        cin,
        cout,
        kernel=kernel,
        expansion=draw(st.integers(1, 8)),
        stride=stride,
        se=draw(st.booleans()),
        act=act,
    )


@given(layer_keys())
def test_key_round_trips_through_its_string(key: LayerKey) -> None:
    assert parse(str(key)) == key
    assert str(parse(str(key))) == str(key)


@given(layer_keys())
def test_key_string_is_one_token_per_field(key: LayerKey) -> None:
    text = str(key)
    assert " " not in text
    assert text.startswith(key.op.value + "_hw")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mbconv_hw56_i24_o40_k5_e6_s2", LayerKey(Op.MBCONV, 56, 24, 40, 5, 6, 2)),
        ("skip_hw28_i40_o40", LayerKey(Op.SKIP, 28, 40, 40)),
        ("conv_hw224_i3_o32_k3_s2", LayerKey(Op.CONV, 224, 3, 32, kernel=3, stride=2)),
        ("head_hw7_i320_o1280_c1000", LayerKey(Op.HEAD, 7, 320, 1280, classes=1000)),
        ("logits_hw7_i1280_c1000", LayerKey(Op.LOGITS, 7, 1280, 1000, classes=1000)),
        ("conv_hw7_i320_o1280_k1_s1", LayerKey(Op.CONV, 7, 320, 1280, kernel=1, stride=1)),
        (
            "mbconv_hw14_i80_o80_k3_e3_s1_se_hswish",
            LayerKey(Op.MBCONV, 14, 80, 80, 3, 3, 1, se=True, act=Activation.HSWISH),
        ),
    ],
)
def test_documented_spellings_parse(text: str, expected: LayerKey) -> None:
    assert parse(text) == expected
    assert str(expected) == text


def test_tokens_in_other_order_parse_to_the_canonical_key() -> None:
    assert str(parse("mbconv_s2_k5_e6_hw56_i24_o40")) == "mbconv_hw56_i24_o40_k5_e6_s2"


@pytest.mark.parametrize(
    ("text", "bad_token"),
    [
        ("mbconv_hw56_i24_o40_k4_e6_s2", "k4"),  # even kernel
        ("mbconv_hw56_i24_o40_k3_e0_s2", "e0"),  # expansion below 1
        ("skip_hw28_i40_o80", "o80"),  # skip changing channels
        ("mbconv_hw56_i0_o40_k3_e6_s2", "i0"),  # zero channels
        ("mbconv_hw56_i24_o0_k3_e6_s2", "o0"),
        ("mbconv_hw56_i24_o40_k3_e6_s3", "s3"),
        ("mbconv_hw56_i24_o40_kx_e6_s2", "kx"),  # malformed token
        ("mbconv_hw56_i24_o40_k3_e6_s2_bogus", "bogus"),
        ("mbconv_hw56_i24_o40_k03_e6_s2", "k03"),  # non-canonical number
        ("mbconv_hw56_i24_o40_k3_k5_e6_s2", "k5"),  # repeated token
        ("resnet_hw56_i24_o40", "resnet"),  # unknown op
        ("conv_hw56_i24_o40_k3_e6_s2", "e6"),  # token that does not apply
        ("mbconv_hw56_i24_o40_k3_s2", "e<int>"),  # missing token
        ("skip_hw28_i40_o40_se", "se"),
        ("head_hw7_i320_o1280_c0", "c0"),
        ("logits_hw7_i1280_c0", "c0"),
        ("logits_hw7_i1280_o1000_c1000", "o1000"),  # the output is the classes, not a token
        ("logits_hw7_i1280_c1000_hswish", "hswish"),  # pooling + a linear layer: no activation
        ("logits_hw7_i1280", "c<int>"),
        ("mbconv_hw0_i24_o40_k3_e6_s2", "hw0"),
    ],
)
def test_impossible_or_malformed_keys_raise_naming_the_token(text: str, bad_token: str) -> None:
    with pytest.raises(ValueError, match=bad_token):
        parse(text)


def test_skip_with_stride_two_is_impossible() -> None:
    with pytest.raises(ValueError, match="s2"):
        LayerKey(Op.SKIP, 28, 40, 40, stride=2)


@pytest.mark.parametrize("text", ["", "   ", "_", "mbconv"])
def test_empty_or_bare_keys_raise(text: str) -> None:
    with pytest.raises(ValueError, match="layer key"):
        parse(text)


def test_mbconv_macs_and_params_by_hand() -> None:
    # expand 56*56*24*144, depthwise 28*28*144*25, project 28*28*144*40
    key = parse("mbconv_hw56_i24_o40_k5_e6_s2")
    assert key.macs == 56 * 56 * 24 * 144 + 28 * 28 * 144 * 25 + 28 * 28 * 144 * 40
    assert key.params == (24 * 144 + 2 * 144) + (144 * 25 + 2 * 144) + (144 * 40 + 2 * 40)
    assert key.hw_out == 28
    assert key.output_shape_nhwc == (1, 28, 28, 40)
    assert not key.has_residual


def test_expansion_one_has_no_expand_conv_and_se_adds_two_fcs() -> None:
    plain = parse("mbconv_hw112_i32_o16_k3_e1_s1")
    assert plain.macs == 112 * 112 * 32 * 9 + 112 * 112 * 32 * 16
    se = parse("mbconv_hw112_i32_o16_k3_e1_s1_se")
    assert se.se_channels == 8
    assert se.macs - plain.macs == 2 * 32 * 8
    assert se.params - plain.params == 32 * 8 + 8 + 8 * 32 + 32


def test_residual_only_when_shape_is_kept() -> None:
    assert parse("mbconv_hw28_i40_o40_k3_e3_s1").has_residual
    assert not parse("mbconv_hw28_i40_o80_k3_e3_s1").has_residual
    assert parse("skip_hw28_i40_o40").macs == 0


def test_head_counts_conv_and_classifier() -> None:
    head = parse("head_hw7_i320_o1280_c1000")
    assert head.macs == 49 * 320 * 1280 + 1280 * 1000
    assert head.output_shape_nhwc == (1, 1000)


def test_the_head_split_in_two_costs_what_the_merged_head_costs() -> None:
    head = parse("head_hw7_i320_o1280_c1000")
    conv, logits = parse("conv_hw7_i320_o1280_k1_s1"), parse("logits_hw7_i1280_c1000")
    assert conv.macs + logits.macs == head.macs
    assert conv.params + logits.params == head.params
    assert logits.macs == 1280 * 1000
    assert (logits.hw_out, logits.cout, logits.output_shape_nhwc) == (1, 1000, (1, 1000))
    # input, pooled vector and scores, 4 bytes each
    assert logits.activation_bytes == 4 * (49 * 1280 + 1280 + 1000)


def test_logits_output_must_be_its_classes() -> None:
    with pytest.raises(ValueError, match="o10 on logits must equal its classes"):
        LayerKey(Op.LOGITS, 7, 1280, 10, classes=1000)


@pytest.mark.parametrize(
    "kwargs",
    [{"classes": 10.0}, {"cin": 3.0}, {"cin": True}],
)
def test_non_integer_fields_are_rejected(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"op": Op.HEAD, "hw": 7, "cin": 320, "cout": 1280, "classes": 10}
    with pytest.raises(TypeError, match="must be an int"):
        LayerKey(**{**fields, **kwargs})  # type: ignore[arg-type]


def test_se_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="se must be a bool"):
        LayerKey(Op.MBCONV, 14, 80, 80, 3, 3, 1, se="no")  # type: ignore[arg-type]
