"""torch (NCHW, batch 1) modules of layer keys and whole networks, for ONNX export.

Padding: convolutions pad ``kernel // 2`` on every side, the PyTorch idiom, which exports as a
single ONNX ``Conv``. For odd kernels it gives exactly the output size of TensorFlow's "same"
padding, and the same values at stride 1. At stride 2 TensorFlow pads asymmetrically (the extra
row and column go at the bottom and right), so a stride-2 torch block and its Keras twin share
weights and shapes but not outputs; the ONNX checks compare torch with ONNX Runtime only.

torch is imported here at module level: import this module only where a model is built.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from models.blocks import BN_EPSILON, NothingToExport, Params, block_params, network_blocks
from models.layer_key import Activation, LayerKey, Op


def build_torch_layer(key: LayerKey) -> nn.Module:
    """An eval-mode module of one layer variant with the weights of :func:`block_params`."""
    module = _block(key)
    load_params(module, block_params(key))
    return module.eval()


def build_torch_network(keys: Sequence[LayerKey]) -> nn.Module:
    """An eval-mode module of a whole network (``SearchSpace.network(arch)``); skips dropped."""
    blocks = []
    for key in network_blocks(keys):
        block = _block(key)
        load_params(block, block_params(key))
        blocks.append(block)
    return nn.Sequential(*blocks).eval()


def load_params(module: nn.Module, params: Params) -> None:
    """Copy ``params`` into ``module``; every parameter and BN statistic must be covered."""
    state = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in params.items()}
    result = module.load_state_dict(state, strict=False)
    # BN's step counter is not a weight; anything else missing means the two definitions drifted.
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise RuntimeError(
            f"parameter names of {type(module).__name__} and block_params disagree: "
            f"missing {missing}, unexpected {result.unexpected_keys}"
        )


class ConvBNAct(nn.Module):
    """Conv (no bias: BN follows), BN, and an optional activation."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: Activation | None = None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPSILON)
        self.act = activation(act) if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.act(self.bn(self.conv(x)))
        return out


class SqueezeExcite(nn.Module):
    """Pool, 1x1 conv to ``squeezed`` with ReLU, 1x1 conv back, gate, multiply.

    The gate is the sigmoid for ``se`` keys (EfficientNet, MnasNet). ``hard_gate`` is OFA's
    SEModule, which ``sem`` keys name (mit-han-lab/once-for-all at f03b2673,
    ofa/utils/pytorch_modules.py; MBConvLayer in ofa/utils/layers.py puts it on the expanded
    channels after the depthwise conv): reduce to make_divisible(mid // 4, 8) with bias, ReLU,
    expand with bias, then h_sigmoid, relu6(x + 3) / 6, which is torch's ``hardsigmoid``.
    """

    def __init__(self, channels: int, squeezed: int, hard_gate: bool = False) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.hard_gate = hard_gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.expand(torch.relu(self.reduce(self.pool(x))))
        gate = nn.functional.hardsigmoid(logits) if self.hard_gate else torch.sigmoid(logits)
        return x * gate


class MBConv(nn.Module):
    """MobileNetV2 inverted residual: expand, depthwise, optional SE, project, optional add."""

    def __init__(self, key: LayerKey) -> None:
        super().__init__()
        mid = key.mid
        self.residual = key.has_residual
        self.expand = ConvBNAct(key.cin, mid, 1, act=key.act) if key.expansion > 1 else None
        self.depthwise = ConvBNAct(mid, mid, key.kernel, key.stride, groups=mid, act=key.act)
        self.se = SqueezeExcite(mid, key.se_channels, key.se_mid) if key.se else None
        self.project = ConvBNAct(mid, key.cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.expand(x) if self.expand is not None else x
        out = self.depthwise(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        return out + x if self.residual else out


class Logits(nn.Module):
    """Global average pool, fully connected to the classes (OFA's ``Logits``)."""

    def __init__(self, key: LayerKey) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(key.cin, key.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(torch.flatten(self.pool(x), 1))
        return out


class GlobalPool(nn.Module):
    """Global average pool that keeps the map 4-D (1x1): OFA MobileNetV3's pooling between its
    final expand and feature-mix convs (MyGlobalAvgPool2d(keep_dim=True)), a ``pool`` key."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.pool(x)
        return out


class Head(nn.Module):
    """1x1 conv + BN + activation, global average pool, fully connected to the classes."""

    def __init__(self, key: LayerKey) -> None:
        super().__init__()
        self.conv = nn.Conv2d(key.cin, key.cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(key.cout, eps=BN_EPSILON)
        self.act = activation(key.act)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(key.cout, key.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(self.act(self.bn(self.conv(x))))
        out: torch.Tensor = self.fc(torch.flatten(pooled, 1))
        return out


def activation(act: Activation) -> nn.Module:
    if act is Activation.RELU6:
        return nn.ReLU6()
    if act is Activation.RELU:
        return nn.ReLU()
    if act is Activation.HSWISH:
        return nn.Hardswish()
    return nn.SiLU()


def _block(key: LayerKey) -> nn.Module:
    if key.op is Op.SKIP:
        raise NothingToExport(key)
    if key.op is Op.CONV:
        return ConvBNAct(key.cin, key.cout, key.kernel, key.stride, act=key.act)
    if key.op is Op.HEAD:
        return Head(key)
    if key.op is Op.LOGITS:
        return Logits(key)
    if key.op is Op.POOL:
        return GlobalPool()
    return MBConv(key)
