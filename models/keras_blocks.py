"""Keras (NHWC, batch 1) models of layer keys and whole networks, for TFLite export.

Keras is imported inside the functions: importing :mod:`models` must stay fast for the CLI and
the service, which never build a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from models.blocks import BN_EPSILON, NothingToExport, Params, block_params, network_blocks
from models.layer_key import Activation, LayerKey, Op

if TYPE_CHECKING:
    import keras

# Keras' BatchNormalization weight order, under their torch names.
_BN_PARAMS = ("weight", "bias", "running_mean", "running_var")


def build_keras_layer(key: LayerKey) -> keras.Model:
    """A Keras model of one layer variant with deterministic weights seeded from the key."""
    import keras

    if key.op is Op.SKIP:
        raise NothingToExport(key)
    inputs = keras.Input(shape=key.input_shape_nhwc[1:], batch_size=1, name="input")
    outputs = apply_block(inputs, key, block_params(key), "")
    return keras.Model(inputs, outputs, name=_model_name(str(key)))


def build_keras_network(keys: Sequence[LayerKey]) -> keras.Model:
    """A Keras model of a whole network (e.g. ``SearchSpace.network(arch)``); skips dropped."""
    import keras

    blocks = network_blocks(keys)
    inputs = keras.Input(shape=blocks[0].input_shape_nhwc[1:], batch_size=1, name="input")
    x = inputs
    for position, key in enumerate(blocks):
        x = apply_block(x, key, block_params(key), f"b{position}_")
    return keras.Model(inputs, x, name="network")


def apply_block(x: Any, key: LayerKey, params: Params, prefix: str) -> Any:
    """Append the layers of ``key`` to the Keras tensor ``x``; layer names start ``prefix``."""
    import keras

    if key.op is Op.CONV:
        return _conv_bn(x, params, "", prefix, key.kernel, key.stride, key.act)
    if key.op is Op.HEAD:
        x = _conv_bn(x, params, "", prefix, 1, 1, key.act)
        return _pool_classify(x, params, prefix, key.classes)
    if key.op is Op.LOGITS:
        return _pool_classify(x, params, prefix, key.classes)
    if key.op is Op.POOL:
        # OFA MobileNetV3's global average pool between its two head convs: the map stays
        # 4-D (1x1), as MyGlobalAvgPool2d(keep_dim=True) leaves it for the 1x1 conv after it.
        return keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}pool")(x)
    if key.op is Op.SKIP:
        raise NothingToExport(key)
    block_input = x
    if key.expansion > 1:
        x = _conv_bn(x, params, "expand", prefix, 1, 1, key.act)
    x = _conv_bn(x, params, "depthwise", prefix, key.kernel, key.stride, key.act)
    if key.se:
        x = _squeeze_excite(x, params, prefix, "hard_sigmoid" if key.se_mid else "sigmoid")
    x = _conv_bn(x, params, "project", prefix, 1, 1, None)
    if key.has_residual:
        x = keras.layers.Add(name=f"{prefix}residual")([x, block_input])
    return x


def _pool_classify(x: Any, params: Params, prefix: str, classes: int) -> Any:
    """Global average pooling, then a fully connected layer to the classes."""
    import keras

    x = keras.layers.GlobalAveragePooling2D(name=f"{prefix}pool")(x)
    fc = keras.layers.Dense(classes, name=f"{prefix}fc")
    x = fc(x)
    fc.set_weights([params["fc.weight"].T, params["fc.bias"]])
    return x


def _conv_bn(
    x: Any,
    params: Params,
    part: str,
    prefix: str,
    kernel: int,
    stride: int,
    act: Activation | None,
) -> Any:
    """Conv (no bias: BN follows), BN and ``act``; ``part`` is '' or an MBConv part name."""
    import keras

    conv, bn = (f"{part}.conv", f"{part}.bn") if part else ("conv", "bn")
    weight = params[f"{conv}.weight"]
    name = prefix + conv.replace(".", "_")
    if part == "depthwise":
        layer = keras.layers.DepthwiseConv2D(
            kernel, stride, padding="same", use_bias=False, name=name
        )
        x = layer(x)
        layer.set_weights([weight.transpose(2, 3, 0, 1)])
    else:
        layer = keras.layers.Conv2D(
            weight.shape[0], kernel, stride, padding="same", use_bias=False, name=name
        )
        x = layer(x)
        layer.set_weights([weight.transpose(2, 3, 1, 0)])
    norm = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=prefix + bn.replace(".", "_"))
    x = norm(x)
    norm.set_weights([params[f"{bn}.{p}"] for p in _BN_PARAMS])
    return x if act is None else _activation(act, f"{name}_act")(x)


def _squeeze_excite(x: Any, params: Params, prefix: str, gate: str) -> Any:
    """Pool, 1x1 conv to ``key.se_channels`` with ReLU, 1x1 conv back with ``gate``, multiply.

    ``se`` keys gate with the sigmoid (EfficientNet, MnasNet). ``sem`` keys are OFA's SEModule
    (mit-han-lab/once-for-all at f03b2673, ofa/utils/pytorch_modules.py, used by MBConvLayer in
    ofa/utils/layers.py): on the expanded channels, reduce to make_divisible(mid // 4, 8) with
    bias, ReLU, expand with bias, then h_sigmoid, relu6(x + 3) / 6, which is Keras'
    ``hard_sigmoid`` (clip(x / 6 + 0.5, 0, 1)).
    """
    import keras

    squeezed = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}se_pool")(x)
    for part, act in (("reduce", "relu"), ("expand", gate)):
        weight = params[f"se.{part}.weight"]
        conv = keras.layers.Conv2D(weight.shape[0], 1, activation=act, name=f"{prefix}se_{part}")
        squeezed = conv(squeezed)
        conv.set_weights([weight.transpose(2, 3, 1, 0), params[f"se.{part}.bias"]])
    return keras.layers.Multiply(name=f"{prefix}se_gate")([x, squeezed])


def _activation(act: Activation, name: str) -> Any:
    import keras

    if act is Activation.RELU6:
        return keras.layers.ReLU(6.0, name=name)
    if act is Activation.RELU:
        return keras.layers.ReLU(name=name)
    if act is Activation.HSWISH:
        return keras.layers.Activation("hard_swish", name=name)
    return keras.layers.Activation("swish", name=name)


def _model_name(text: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in text)
