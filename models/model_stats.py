"""MAC and parameter counts taken from built models, to check the analytic ones of a layer key.

Counted the way :attr:`LayerKey.macs` defines them: multiply-accumulates of convolutions and
fully connected layers only, batch 1.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras
    from torch import nn


def torch_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Run ``module`` once on zeros of ``input_shape`` and sum the MACs of its Conv2d/Linear."""
    import torch
    from torch import nn

    total = 0

    def count(layer: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            per_output = (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
            total += output.numel() * per_output
        elif isinstance(layer, nn.Linear):
            total += output.numel() * layer.in_features

    hooks = [
        m.register_forward_hook(count)
        for m in module.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    try:
        with torch.no_grad():
            module(torch.zeros(input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def torch_params(module: nn.Module) -> int:
    """Trainable parameters (BN running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def keras_macs(model: keras.Model) -> int:
    """Sum the MACs of the Conv2D, DepthwiseConv2D and Dense layers from their static shapes."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            # One kernel per channel: each output element reads a k*k window of one channel.
            total += math.prod(layer.output.shape[1:]) * math.prod(layer.kernel_size)
        elif isinstance(layer, keras.layers.Conv2D):
            cin = layer.input.shape[-1] // layer.groups
            total += math.prod(layer.output.shape[1:]) * cin * math.prod(layer.kernel_size)
        elif isinstance(layer, keras.layers.Dense):
            total += math.prod(layer.output.shape[1:]) * layer.input.shape[-1]
    return total


def keras_params(model: keras.Model) -> int:
    """Trainable weights (BN moving statistics are non-trainable, not counted)."""
    return sum(math.prod(w.shape) for w in model.trainable_weights)
