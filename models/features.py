"""Numeric features of a layer variant, for the layer model (pure, no learning here).

The work of an MBConv is split by operator because a runtime spends very different time per
MAC on a 1x1 convolution, a depthwise convolution and an element-wise op; a model that is
linear in these parts is close to how the kernels actually cost.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from models.layer_key import BYTES_PER_ELEMENT_FP32, Activation, LayerKey, Op

FEATURES: Final = (
    "pointwise_macs",  # 1x1 expand + project convolutions
    "depthwise_macs",
    "depthwise_outputs",  # per-output overhead of the depthwise kernel, whatever k
    "dense_macs",  # stem conv, the head's conv and classifier, the logits' classifier
    "se_macs",
    "elementwise",  # activations, SE gate, residual add: elements touched
    "activation_bytes",
    "weight_bytes",
    "is_mbconv",
    "is_conv",
    "is_head",
    # Appended last: a model fitted before they existed reads the columns it knows.
    "is_logits",
    "is_pool",  # OFA MobileNetV3's global pool between its head convs (MBv3's AvgPool2D)
    # A 5x5 or 7x7 depthwise costs more per MAC than a 3x3 (XNNPACK has a tuned microkernel per
    # kernel size, and a 7x7 at stride 2 on LiteRT ran 5x slower per MAC than the 3x3): their
    # MACs again, as the extra over the shared depthwise_macs.
    "depthwise_macs_k5",
    "depthwise_macs_k7",
    # h-swish and swish are several element-wise ops where ReLU6 is one (clamp): elements they
    # touch, on top of elementwise.
    "swish_elements",
    # A stride-2 depthwise reads four inputs per output and takes other microkernels: its MACs
    # again, as the extra over depthwise_macs.
    "depthwise_macs_s2",
    # Kernels the runtime launches for the layer (1x1 convs, depthwise, the SE's pool, FCs and
    # gate, the residual add): each has a fixed cost that matters on small layers.
    "kernel_count",
)


_SWISH: Final = (Activation.HSWISH, Activation.SWISH)


def feature_vector(key: LayerKey) -> npt.NDArray[np.float64]:
    """The features of one layer, in the order of :data:`FEATURES`."""
    hw_in2, hw_out2 = key.hw * key.hw, key.hw_out * key.hw_out
    values = dict.fromkeys(FEATURES, 0.0)
    values["activation_bytes"] = float(key.activation_bytes)
    values["weight_bytes"] = float(key.params * BYTES_PER_ELEMENT_FP32)
    if key.op is Op.MBCONV:
        mid = key.mid
        expand = hw_in2 * key.cin * mid if key.expansion > 1 else 0
        values["pointwise_macs"] = float(expand + hw_out2 * mid * key.cout)
        values["depthwise_macs"] = float(hw_out2 * mid * key.kernel**2)
        values["depthwise_outputs"] = float(hw_out2 * mid)
        # se_channels follows the key's SE width rule (a quarter of cin, or OFA's of mid).
        values["se_macs"] = float(2 * mid * key.se_channels)
        elementwise = (hw_in2 * mid if key.expansion > 1 else 0) + hw_out2 * mid
        elementwise += hw_out2 * mid if key.se else 0
        elementwise += hw_out2 * key.cout if key.has_residual else 0
        values["elementwise"] = float(elementwise)
        if key.kernel == 5:
            values["depthwise_macs_k5"] = values["depthwise_macs"]
        elif key.kernel >= 7:
            values["depthwise_macs_k7"] = values["depthwise_macs"]
        if key.act in _SWISH:
            activated = (hw_in2 * mid if key.expansion > 1 else 0) + hw_out2 * mid
            values["swish_elements"] = float(activated)
        if key.stride > 1:
            values["depthwise_macs_s2"] = values["depthwise_macs"]
        kernels = (1 if key.expansion > 1 else 0) + 2  # expand, depthwise, project
        kernels += 5 if key.se else 0  # pool, FC, activation, FC, gate multiply
        kernels += 1 if key.has_residual else 0
        values["kernel_count"] = float(kernels)
        values["is_mbconv"] = 1.0
    elif key.op is Op.CONV:
        values["dense_macs"] = float(key.macs)
        values["elementwise"] = float(hw_out2 * key.cout)
        values["swish_elements"] = float(hw_out2 * key.cout) if key.act in _SWISH else 0.0
        values["is_conv"] = 1.0
    elif key.op is Op.HEAD:
        values["dense_macs"] = float(key.macs)
        values["elementwise"] = float(hw_in2 * key.cout)
        values["is_head"] = 1.0
    elif key.op is Op.LOGITS:
        values["dense_macs"] = float(key.macs)
        values["elementwise"] = float(hw_in2 * key.cin)  # the global pool reads every input
        values["is_logits"] = 1.0
    elif key.op is Op.POOL:
        values["elementwise"] = float(hw_in2 * key.cin)  # reads every input element once
        values["is_pool"] = 1.0
    return np.fromiter(values.values(), dtype=np.float64, count=len(FEATURES))


def feature_matrix(keys: list[LayerKey]) -> npt.NDArray[np.float64]:
    if not keys:
        return np.zeros((0, len(FEATURES)))
    return np.stack([feature_vector(k) for k in keys])


# Where a layer sits in shape space, for a smooth correction of what the linear cost misses
# (predictor.layer_model's residual GP): sizes on a log scale, choices as numbers.
SHAPE_FEATURES: Final = (
    "log2_hw_out",
    "log2_cin",
    "log2_cout",
    "log2_mid",
    "kernel",
    "stride2",
    "se",
    "swish",
    "is_mbconv",
    "expansion",
)


def shape_matrix(keys: list[LayerKey]) -> npt.NDArray[np.float64]:
    """One row of :data:`SHAPE_FEATURES` per key."""
    rows = [
        (
            np.log2(k.hw_out),
            np.log2(max(k.cin, 1)),
            np.log2(max(k.cout, 1)),
            np.log2(max(k.mid if k.op is Op.MBCONV else k.cout, 1)),
            float(k.kernel),
            float(k.stride > 1),
            float(k.se),
            float(k.act in _SWISH),
            float(k.op is Op.MBCONV),
            float(k.expansion),
        )
        for k in keys
    ]
    return np.asarray(rows, dtype=np.float64).reshape(len(keys), len(SHAPE_FEATURES))
