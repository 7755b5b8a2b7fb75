"""Numeric features of a layer variant, for latency regression (pure, no learning here).

The work of an MBConv is split by operator because a runtime spends very different time per
MAC on a 1x1 convolution, a depthwise convolution and an element-wise op; a model that is
linear in these parts is close to how the kernels actually cost.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from models.layer_key import BYTES_PER_ELEMENT_FP32, LayerKey, Op

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
    # Appended last: a regression fitted before they existed reads the columns it knows.
    "is_logits",
    "is_pool",  # OFA MobileNetV3's global pool between its head convs (MBv3's AvgPool2D)
)


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
        values["is_mbconv"] = 1.0
    elif key.op is Op.CONV:
        values["dense_macs"] = float(key.macs)
        values["elementwise"] = float(hw_out2 * key.cout)
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
