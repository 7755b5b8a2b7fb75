"""The Keras and torch builders: shapes, seeded weights, and MAC/parameter counts of the built
models against the analytic ones of the layer key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.blocks import NothingToExport, block_params, network_blocks, sample_input
from models.features import FEATURES, feature_vector
from models.layer_key import LayerKey, Op, make_divisible, parse
from models.model_stats import keras_macs, keras_params, torch_macs, torch_params
from models.spaces import get_space
from models.torch_blocks import build_torch_layer, build_torch_network
from tests.fixtures.factories import spec_file_space

# Every structural case: expansion or not, stride 1/2, residual or not, SE or not, each
# activation, the fixed conv stem and classifier head, and the head's two parts on their own
# (the 1x1 feature-mix conv; pooling + classifier).
KEYS = [
    "mbconv_hw16_i16_o24_k5_e6_s2",
    "mbconv_hw16_i24_o24_k3_e3_s1",
    "mbconv_hw16_i24_o24_k3_e6_s1_se",
    "mbconv_hw15_i16_o24_k3_e3_s2_se",
    "mbconv_hw32_i16_o8_k3_e1_s1",
    "mbconv_hw8_i24_o24_k5_e6_s1_hswish",
    "mbconv_hw8_i24_o32_k3_e3_s1_swish",
    "mbconv_hw8_i24_o24_k3_e3_s1_relu",
    "conv_hw64_i3_o16_k3_s2",
    "head_hw8_i32_o128_c10",
    "conv_hw8_i32_o128_k1_s1",
    "logits_hw8_i128_c10",
    # OFA MobileNetV3's: SE on the expanded channels (sem), and its head's global pool, 1x1
    # feature-mix conv at 1x1 and the classifier after it.
    "mbconv_hw16_i24_o40_k5_e3_s2_sem_hswish",
    "mbconv_hw8_i40_o40_k3_e4_s1_sem_relu",
    "pool_hw7_i96",
    "conv_hw1_i96_o128_k1_s1_hswish",
    "logits_hw1_i128_c10",
]
# Stride 1 only: at stride 2 torch pads symmetrically and TF does not (see torch_blocks).
STRIDE_1_KEYS = [k for k in KEYS if parse(k).stride == 1]


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def to_nhwc(y: torch.Tensor) -> np.ndarray:
    out = y.detach().numpy()
    return out.transpose(0, 2, 3, 1) if out.ndim == 4 else out


@pytest.mark.parametrize("text", KEYS)
def test_torch_block_macs_and_params_match_the_key(text: str) -> None:
    key = parse(text)
    module = build_torch_layer(key)
    n, h, w, c = key.input_shape_nhwc
    assert torch_macs(module, (n, c, h, w)) == key.macs
    assert torch_params(module) == key.params


@pytest.mark.parametrize("text", KEYS)
def test_torch_block_output_shape_and_values(text: str) -> None:
    key = parse(text)
    with torch.no_grad():
        out = to_nhwc(build_torch_layer(key)(nchw(sample_input(key.input_shape_nhwc))))
    assert out.shape == key.output_shape_nhwc
    assert np.isfinite(out).all()
    assert out.std() > 0.1  # random BN statistics: the block is far from an identity or zero


@pytest.mark.slow
@pytest.mark.parametrize("text", KEYS)
def test_keras_block_macs_params_and_shape_match_the_key(text: str) -> None:
    from models.keras_blocks import build_keras_layer

    key = parse(text)
    model = build_keras_layer(key)
    assert keras_macs(model) == key.macs
    assert keras_params(model) == key.params
    assert tuple(model.output.shape) == key.output_shape_nhwc


@pytest.mark.slow
@pytest.mark.parametrize("text", STRIDE_1_KEYS)
def test_keras_and_torch_blocks_compute_the_same_function(text: str) -> None:
    from models.keras_blocks import build_keras_layer

    key = parse(text)
    x = sample_input(key.input_shape_nhwc)
    keras_out = np.asarray(build_keras_layer(key)(x))
    with torch.no_grad():
        torch_out = to_nhwc(build_torch_layer(key)(nchw(x)))
    np.testing.assert_allclose(keras_out, torch_out, rtol=1e-4, atol=1e-4)


def test_weights_are_the_same_alone_and_anywhere_in_a_network() -> None:
    key = parse("mbconv_hw16_i24_o24_k3_e6_s1_se")
    first, again = block_params(key), block_params(key)
    other = block_params(parse("mbconv_hw16_i24_o24_k3_e6_s1"))
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    assert not np.array_equal(first["project.conv.weight"], other["project.conv.weight"])
    # The key twice in a network: both blocks carry the standalone layer's weights, which is
    # what lets a network's file be joined from its layers' files.
    stem = parse("conv_hw16_i3_o24_k3_s1")
    network = build_torch_network([stem, key, key])
    for block in (network[1], network[2]):
        state = block.state_dict()
        for name, value in first.items():
            np.testing.assert_array_equal(state[name].numpy(), value)
    # BN is not the identity, so a lost or wrongly folded BN changes the output.
    assert not np.allclose(first["project.bn.running_var"], 1.0)
    assert not np.allclose(first["project.bn.running_mean"], 0.0)


def test_sample_input_is_deterministic() -> None:
    a, b = sample_input((1, 8, 8, 3)), sample_input((1, 8, 8, 3))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample_input((1, 8, 8, 3), seed=1))
    assert a.dtype == np.float32


def test_skip_has_nothing_to_build() -> None:
    skip = parse("skip_hw16_i24_o24")
    with pytest.raises(ValueError, match=r"skip .*nothing to build or export"):
        build_torch_layer(skip)
    with pytest.raises(NothingToExport):
        block_params(skip)


def test_network_drops_skips_and_checks_chaining() -> None:
    space = get_space("tiny-64")
    arch = [0, 4, 3, 4]  # both non-first layers skipped
    keys = space.network(arch)
    blocks = network_blocks(keys)
    assert all(k.op is not Op.SKIP for k in blocks)
    assert len(blocks) == len(keys) - 2
    with pytest.raises(ValueError, match="cannot follow"):
        network_blocks([keys[0], keys[2]])  # the stem gives 16 channels, layer 0 takes 8
    with pytest.raises(ValueError, match="cannot follow"):
        network_blocks([keys[-1], keys[-1]])
    with pytest.raises(ValueError, match="nothing to build"):
        network_blocks([LayerKey(Op.SKIP, 8, 8, 8)])


def test_torch_network_output_shape_and_macs() -> None:
    space = get_space("tiny-64")
    arch = [1, 4, 2, 0]
    keys = space.network(arch)
    module = build_torch_network(keys)
    with torch.no_grad():
        out = module(torch.from_numpy(sample_input((1, 3, 64, 64))))
    assert tuple(out.shape) == (1, 10)
    assert torch_macs(module, (1, 3, 64, 64)) == sum(k.macs for k in keys)
    assert torch_params(module) == sum(k.params for k in keys)


def ofa_se_module(x: torch.Tensor, params: dict[str, np.ndarray]) -> torch.Tensor:
    """OFA's SEModule.forward written out (mit-han-lab/once-for-all at f03b2673,
    ofa/utils/pytorch_modules.py): mean over W then H, reduce, ReLU, expand, h_sigmoid."""
    y = x.mean(3, keepdim=True).mean(2, keepdim=True)
    w = {name: torch.from_numpy(value) for name, value in params.items()}
    y = torch.relu(torch.nn.functional.conv2d(y, w["se.reduce.weight"], w["se.reduce.bias"]))
    y = torch.nn.functional.conv2d(y, w["se.expand.weight"], w["se.expand.bias"])
    return x * (torch.nn.functional.relu6(y + 3.0) / 6.0)


def test_sem_is_ofas_se_on_the_expanded_channels() -> None:
    """A quarter of mid = 72 is 18, which OFA's make_divisible rounds up to 24 (18 -> 16 would
    lose more than 10%); the older ``se`` rule takes a quarter of the 24 inputs, 6."""
    key = parse("mbconv_hw16_i24_o40_k5_e3_s2_sem_hswish")
    assert key.mid == 72
    assert key.se_channels == make_divisible(72 // 4, 8) == 24
    assert parse("mbconv_hw16_i24_o40_k5_e3_s2_se_hswish").se_channels == 6
    block = build_torch_layer(key)
    assert block.se.reduce.out_channels == 24
    assert block.se.reduce.in_channels == 72
    params = block_params(key)
    x = torch.from_numpy(sample_input((1, 72, 8, 8)))
    with torch.no_grad():
        np.testing.assert_allclose(
            block.se(x).numpy(), ofa_se_module(x, params).numpy(), rtol=1e-6, atol=1e-6
        )


def test_pool_averages_and_keeps_a_1x1_map() -> None:
    key = parse("pool_hw7_i96")
    assert block_params(key) == {}
    x = sample_input(key.input_shape_nhwc)
    with torch.no_grad():
        out = to_nhwc(build_torch_layer(key)(nchw(x)))
    assert out.shape == key.output_shape_nhwc == (1, 1, 1, 96)
    np.testing.assert_allclose(out, x.mean(axis=(1, 2), keepdims=True), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("text", KEYS)
def test_feature_rows_are_finite_and_split_the_keys_macs(text: str) -> None:
    key = parse(text)
    row = dict(zip(FEATURES, feature_vector(key), strict=True))
    assert all(np.isfinite(v) and v >= 0 for v in row.values()), row
    assert row["activation_bytes"] > 0
    assert row["elementwise"] > 0
    macs = ("pointwise_macs", "depthwise_macs", "dense_macs", "se_macs")
    assert sum(row[m] for m in macs) == key.macs
    indicators = {name: value for name, value in row.items() if name.startswith("is_")}
    assert indicators.pop(f"is_{key.op.value}") == 1.0
    assert not any(indicators.values())
    if key.op is Op.POOL:
        assert key.macs == 0
        assert row["weight_bytes"] == 0
        assert row["elementwise"] == key.hw**2 * key.cin
    else:
        assert row["weight_bytes"] > 0
    if key.se:
        assert row["se_macs"] == 2 * key.mid * key.se_channels > 0


def test_a_sampled_ofa_mobilenetv3_network_builds_in_torch() -> None:
    space = spec_file_space("ofa_mbv3_d234_e346_k357_w1.0")
    arch = space.sample(1, seed=5)[0]
    arch[0] = space.resolutions.index(128)
    keys = space.network(arch)
    assert [k.op for k in network_blocks(keys)[-4:]] == [Op.CONV, Op.POOL, Op.CONV, Op.LOGITS]
    module = build_torch_network(keys)
    shape = (1, 3, 128, 128)
    with torch.no_grad():
        out = module(torch.from_numpy(sample_input(shape)))
    assert tuple(out.shape) == (1, 1000)
    assert torch.isfinite(out).all()
    assert torch_macs(module, shape) == sum(k.macs for k in keys)
    assert torch_params(module) == sum(k.params for k in keys)
