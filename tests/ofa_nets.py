"""Once-for-All's elastic networks rewritten: the subnet a config selects, and what runs in it.

Rewritten, not copied, from mit-han-lab/once-for-all at f03b2673db313b9167e2a1c2b7a5cad540cc1313
(OFA cannot be imported here; tests/consumers.py says why), so that hwlat's decoding of the
OFA spaces (spaces/*.yaml) can be checked against OFA's own construction:

- ``ofa/imagenet_classification/elastic_nn/networks/ofa_mbv3.py``: ``OFAMobileNetV3.__init__``
  (widths, strides, activations, SE flags, first conv and block, final expand, feature mix,
  classifier), ``set_active_subnet`` and ``get_active_net_config``;
- ``ofa/imagenet_classification/elastic_nn/networks/ofa_proxyless.py``: the same of
  ``OFAProxylessNASNets`` (and ``sample_active_subnet``, whose last depth is always 1);
- ``ofa/imagenet_classification/elastic_nn/modules/dynamic_layers.py``: ``DynamicMBConvLayer``
  (``active_middle_channel``, ``get_active_subnet_config``);
- ``ofa/utils/layers.py``: the ``config`` of ``ConvLayer``, ``IdentityLayer``, ``LinearLayer``,
  ``MBConvLayer`` and ``ResidualBlock``; ``MBConvLayer.__init__`` (mid channels, SE on them);
- ``ofa/utils/pytorch_modules.py``: ``make_divisible``, ``SEModule`` (reduction 4, its width
  made divisible by ``MyNetwork.CHANNEL_DIVISIBLE`` = 8, ``ofa/utils/my_modules.py``);
- ``ofa/utils/common_tools.py``: ``val2list``, ``get_same_padding``;
- ``ofa/imagenet_classification/networks/mobilenet_v3.py`` and ``proxyless_nets.py``: the order
  the layers run in (``forward``): MobileNetV3 pools after the final expand and before the
  feature mix (a 1x1 conv on a 1x1 map); ProxylessNAS mixes, then pools into the classifier.

:func:`running_layers` reads a subnet config as the forward pass runs it, one
:class:`RunLayer` per layer, with the shapes torch's convolutions give.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

CHANNEL_DIVISIBLE = 8  # MyNetwork.CHANNEL_DIVISIBLE
SE_REDUCTION = 4  # SEModule.REDUCTION


def make_divisible(v: float, divisor: int, min_val: int | None = None) -> int:
    """ofa/utils/pytorch_modules.py: the nearest multiple of divisor, at most 10% below v."""
    if min_val is None:
        min_val = divisor
    new_v = max(min_val, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def val2list(val: Any, repeat_time: int = 1) -> list[Any]:
    if isinstance(val, list):
        return val
    if isinstance(val, tuple):
        return list(val)
    return [val for _ in range(repeat_time)]


# -- layer configs, as OFA's layers report them (ofa/utils/layers.py) ------------------------


def conv_config(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    bias: bool = False,
    use_bn: bool = True,
    act_func: str = "relu",
) -> dict[str, Any]:
    """ConvLayer(...).config (dilation 1, groups 1, no shuffle, no SE, weight_bn_act)."""
    return {
        "name": "ConvLayer",
        "kernel_size": kernel_size,
        "stride": stride,
        "dilation": 1,
        "groups": 1,
        "bias": bias,
        "has_shuffle": False,
        "use_se": False,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "use_bn": use_bn,
        "act_func": act_func,
        "dropout_rate": 0,
        "ops_order": "weight_bn_act",
    }


def identity_config(channels: int) -> dict[str, Any]:
    return {
        "name": "IdentityLayer",
        "in_channels": channels,
        "out_channels": channels,
        "use_bn": False,
        "act_func": None,
        "dropout_rate": 0,
        "ops_order": "weight_bn_act",
    }


def linear_config(in_features: int, out_features: int, dropout_rate: float) -> dict[str, Any]:
    return {
        "name": "LinearLayer",
        "in_features": in_features,
        "out_features": out_features,
        "bias": True,
        "use_bn": False,
        "act_func": None,
        "dropout_rate": dropout_rate,
        "ops_order": "weight_bn_act",
    }


def mbconv_config(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int,
    expand_ratio: int,
    act_func: str,
    use_se: bool = False,
    mid_channels: int | None = None,
) -> dict[str, Any]:
    """MBConvLayer(...).config."""
    return {
        "name": "MBConvLayer",
        "in_channels": in_channels,
        "out_channels": out_channels,
        "kernel_size": kernel_size,
        "stride": stride,
        "expand_ratio": expand_ratio,
        "mid_channels": mid_channels,
        "act_func": act_func,
        "use_se": use_se,
        "groups": None,
    }


@dataclass
class DynamicMBConv:
    """DynamicMBConvLayer: its fixed parts and the active kernel and expansion."""

    in_channel_list: list[int]
    out_channel_list: list[int]
    kernel_size_list: list[int]
    expand_ratio_list: list[int]
    stride: int
    act_func: str
    use_se: bool = False
    active_kernel_size: int = 0
    active_expand_ratio: int = 0
    active_out_channel: int = 0

    def __post_init__(self) -> None:
        self.active_kernel_size = max(self.kernel_size_list)
        self.active_expand_ratio = max(self.expand_ratio_list)
        self.active_out_channel = max(self.out_channel_list)

    def active_middle_channel(self, in_channel: int) -> int:
        return make_divisible(round(in_channel * self.active_expand_ratio), CHANNEL_DIVISIBLE)

    def get_active_subnet_config(self, in_channel: int) -> dict[str, Any]:
        return {
            "name": "MBConvLayer",
            "in_channels": in_channel,
            "out_channels": self.active_out_channel,
            "kernel_size": self.active_kernel_size,
            "stride": self.stride,
            "expand_ratio": self.active_expand_ratio,
            "mid_channels": self.active_middle_channel(in_channel),
            "act_func": self.act_func,
            "use_se": self.use_se,
        }


@dataclass
class Block:
    """ResidualBlock: a conv (a fixed MBConvLayer's config, or a dynamic one) and a shortcut."""

    conv: dict[str, Any] | DynamicMBConv
    shortcut: dict[str, Any] | None


# -- the two elastic networks -----------------------------------------------------------------


@dataclass
class ElasticNet:
    """What OFAMobileNetV3 / OFAProxylessNASNets hold after ``__init__``."""

    kind: str  # "mbv3" or "proxyless"
    first_conv: dict[str, Any]
    blocks: list[Block]
    block_group_info: list[list[int]]
    feature_mix_layer: dict[str, Any]
    classifier: dict[str, Any]
    bn: dict[str, Any]
    final_expand_layer: dict[str, Any] | None = None
    runtime_depth: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.runtime_depth = [len(idx) for idx in self.block_group_info]

    def set_active_subnet(self, ks: Any = None, e: Any = None, d: Any = None) -> None:
        ks = val2list(ks, len(self.blocks) - 1)
        expand_ratio = val2list(e, len(self.blocks) - 1)
        depth = val2list(d, len(self.block_group_info))
        for block, k, ratio in zip(self.blocks[1:], ks, expand_ratio, strict=False):
            conv = block.conv
            assert isinstance(conv, DynamicMBConv)
            if k is not None:
                conv.active_kernel_size = k
            if ratio is not None:
                conv.active_expand_ratio = ratio
        for i, dd in enumerate(depth):
            if dd is not None:
                self.runtime_depth[i] = min(len(self.block_group_info[i]), dd)

    def sample_active_subnet(
        self, rng: random.Random, ks_list: list[int], e_list: list[int], d_list: list[int]
    ) -> dict[str, list[int]]:
        """sample_active_subnet without constraints, drawing from ``rng``."""
        slots = len(self.blocks) - 1
        ks = [rng.choice(ks_list) for _ in range(slots)]
        e = [rng.choice(e_list) for _ in range(slots)]
        d = [rng.choice(d_list) for _ in range(len(self.block_group_info))]
        if self.kind == "proxyless":
            d[-1] = 1  # OFAProxylessNASNets.sample_active_subnet: depth_setting[-1] = 1
        self.set_active_subnet(ks, e, d)
        return {"ks": ks, "e": e, "d": d}

    def get_active_net_config(self) -> dict[str, Any]:
        first_block = self.blocks[0]
        assert isinstance(first_block.conv, dict)
        block_configs: list[dict[str, Any]] = [
            {
                "name": "ResidualBlock",
                "conv": dict(first_block.conv),
                "shortcut": first_block.shortcut,
            }
        ]
        input_channel = first_block.conv["out_channels"]
        for stage_id, block_idx in enumerate(self.block_group_info):
            for idx in block_idx[: self.runtime_depth[stage_id]]:
                conv = self.blocks[idx].conv
                assert isinstance(conv, DynamicMBConv)
                block_configs.append(
                    {
                        "name": "ResidualBlock",
                        "conv": conv.get_active_subnet_config(input_channel),
                        "shortcut": self.blocks[idx].shortcut,
                    }
                )
                input_channel = conv.active_out_channel
        config: dict[str, Any] = {
            "name": "MobileNetV3" if self.kind == "mbv3" else "ProxylessNASNets",
            "bn": dict(self.bn),
            "first_conv": dict(self.first_conv),
            "blocks": block_configs,
        }
        if self.final_expand_layer is not None:
            config["final_expand_layer"] = dict(self.final_expand_layer)
        config["feature_mix_layer"] = dict(self.feature_mix_layer)
        config["classifier"] = dict(self.classifier)
        return config


def ofa_mobilenetv3(
    width_mult: float = 1.0,
    ks_list: list[int] | int = 3,
    expand_ratio_list: list[int] | int = 6,
    depth_list: list[int] | int = 4,
    n_classes: int = 1000,
    dropout_rate: float = 0.1,
    bn_param: tuple[float, float] = (0.1, 1e-5),
) -> ElasticNet:
    """OFAMobileNetV3(...) as its __init__ builds it."""
    depths = sorted(val2list(depth_list, 1))
    base_stage_width = [16, 16, 24, 40, 80, 112, 160, 960, 1280]
    final_expand_width = make_divisible(base_stage_width[-2] * width_mult, CHANNEL_DIVISIBLE)
    last_channel = make_divisible(base_stage_width[-1] * width_mult, CHANNEL_DIVISIBLE)
    stride_stages = [1, 2, 2, 2, 1, 2]
    act_stages = ["relu", "relu", "relu", "h_swish", "h_swish", "h_swish"]
    se_stages = [False, False, True, False, True, True]
    n_block_list = [1] + [max(depths)] * 5
    width_list = [make_divisible(w * width_mult, CHANNEL_DIVISIBLE) for w in base_stage_width[:-2]]

    input_channel, first_block_dim = width_list[0], width_list[1]
    first_conv = conv_config(3, input_channel, kernel_size=3, stride=2, act_func="h_swish")
    first_block = Block(
        mbconv_config(
            input_channel, first_block_dim, 3, stride_stages[0], 1, act_stages[0], se_stages[0]
        ),
        identity_config(first_block_dim) if input_channel == first_block_dim else None,
    )
    block_group_info: list[list[int]] = []
    blocks = [first_block]
    block_index = 1
    feature_dim = first_block_dim
    for width, n_block, s, act_func, use_se in zip(
        width_list[2:],
        n_block_list[1:],
        stride_stages[1:],
        act_stages[1:],
        se_stages[1:],
        strict=True,
    ):
        block_group_info.append([block_index + i for i in range(n_block)])
        block_index += n_block
        for i in range(n_block):
            stride = s if i == 0 else 1
            conv = DynamicMBConv(
                val2list(feature_dim),
                val2list(width),
                val2list(ks_list),
                val2list(expand_ratio_list),
                stride,
                act_func,
                use_se,
            )
            shortcut = (
                identity_config(feature_dim) if stride == 1 and feature_dim == width else None
            )
            blocks.append(Block(conv, shortcut))
            feature_dim = width
    final_expand_layer = conv_config(
        feature_dim, final_expand_width, kernel_size=1, act_func="h_swish"
    )
    feature_mix_layer = conv_config(
        final_expand_width,
        last_channel,
        kernel_size=1,
        bias=False,
        use_bn=False,
        act_func="h_swish",
    )
    classifier = linear_config(last_channel, n_classes, dropout_rate)
    return ElasticNet(
        "mbv3",
        first_conv,
        blocks,
        block_group_info,
        feature_mix_layer,
        classifier,
        {"momentum": bn_param[0], "eps": bn_param[1], "ws_eps": None},
        final_expand_layer,
    )


def ofa_proxyless(
    width_mult: float = 1.0,
    ks_list: list[int] | int = 3,
    expand_ratio_list: list[int] | int = 6,
    depth_list: list[int] | int = 4,
    n_classes: int = 1000,
    dropout_rate: float = 0.1,
    bn_param: tuple[float, float] = (0.1, 1e-3),
) -> ElasticNet:
    """OFAProxylessNASNets(...) as its __init__ builds it (ProxylessNAS stage widths)."""
    depths = sorted(val2list(depth_list, 1))
    base_stage_width = [32, 16, 24, 40, 80, 96, 192, 320, 1280]
    input_channel = make_divisible(base_stage_width[0] * width_mult, CHANNEL_DIVISIBLE)
    first_block_width = make_divisible(base_stage_width[1] * width_mult, CHANNEL_DIVISIBLE)
    last_channel = make_divisible(base_stage_width[-1] * width_mult, CHANNEL_DIVISIBLE)
    first_conv = conv_config(3, input_channel, kernel_size=3, stride=2, act_func="relu6")
    first_block = Block(mbconv_config(input_channel, first_block_width, 3, 1, 1, "relu6"), None)
    input_channel = first_block_width
    block_group_info: list[list[int]] = []
    blocks = [first_block]
    block_index = 1
    stride_stages = [2, 2, 2, 1, 2, 1]
    n_block_list = [max(depths)] * 5 + [1]
    width_list = [make_divisible(w * width_mult, CHANNEL_DIVISIBLE) for w in base_stage_width[2:-1]]
    for width, n_block, s in zip(width_list, n_block_list, stride_stages, strict=True):
        block_group_info.append([block_index + i for i in range(n_block)])
        block_index += n_block
        for i in range(n_block):
            stride = s if i == 0 else 1
            conv = DynamicMBConv(
                val2list(input_channel, 1),
                val2list(width, 1),
                val2list(ks_list),
                val2list(expand_ratio_list),
                stride,
                "relu6",
            )
            shortcut = (
                identity_config(input_channel) if stride == 1 and input_channel == width else None
            )
            blocks.append(Block(conv, shortcut))
            input_channel = width
    feature_mix_layer = conv_config(input_channel, last_channel, kernel_size=1, act_func="relu6")
    classifier = linear_config(last_channel, n_classes, dropout_rate)
    return ElasticNet(
        "proxyless",
        first_conv,
        blocks,
        block_group_info,
        feature_mix_layer,
        classifier,
        {"momentum": bn_param[0], "eps": bn_param[1], "ws_eps": None},
    )


# -- what runs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLayer:
    """One layer as the forward pass runs it.

    ``mid`` is the expanded (depthwise) width of an MBConv, 0 elsewhere; ``se`` the width of
    its squeeze-and-excitation, 0 without; ``act`` OFA's activation name ("none" for pooling
    and the linear classifier); ``residual`` whether a shortcut adds the input back.
    """

    op: str  # "conv", "mbconv", "pool", "logits" (ProxylessNAS: pooling + the classifier)
    hw: int
    cin: int
    cout: int
    kernel: int = 1
    stride: int = 1
    mid: int = 0
    se: int = 0
    act: str = "none"
    residual: bool = False


def conv_out(hw: int, kernel: int, stride: int) -> int:
    """nn.Conv2d's output size with OFA's padding (get_same_padding: kernel // 2)."""
    padding = kernel // 2
    return (hw + 2 * padding - (kernel - 1) - 1) // stride + 1


def running_layers(net_config: dict[str, Any], image_size: int) -> list[RunLayer]:
    """The layers a subnet config runs, in forward order, each with the input it receives."""
    layers: list[RunLayer] = []
    first = net_config["first_conv"]
    hw = image_size
    layers.append(
        RunLayer(
            "conv",
            hw,
            first["in_channels"],
            first["out_channels"],
            first["kernel_size"],
            first["stride"],
            act=first["act_func"],
        )
    )
    hw = conv_out(hw, first["kernel_size"], first["stride"])
    for block in net_config["blocks"]:
        conv = block["conv"]
        if conv is None:
            continue
        mid = conv["mid_channels"]
        if mid is None:  # MBConvLayer.__init__: feature_dim = round(in_channels * expand_ratio)
            mid = round(conv["in_channels"] * conv["expand_ratio"])
        se = make_divisible(mid // SE_REDUCTION, CHANNEL_DIVISIBLE) if conv["use_se"] else 0
        layers.append(
            RunLayer(
                "mbconv",
                hw,
                conv["in_channels"],
                conv["out_channels"],
                conv["kernel_size"],
                conv["stride"],
                mid,
                se,
                conv["act_func"],
                block["shortcut"] is not None,
            )
        )
        hw = conv_out(hw, conv["kernel_size"], conv["stride"])
    classifier = net_config["classifier"]
    if "final_expand_layer" in net_config:  # MobileNetV3.forward
        expand = net_config["final_expand_layer"]
        layers.append(
            RunLayer(
                "conv",
                hw,
                expand["in_channels"],
                expand["out_channels"],
                expand["kernel_size"],
                expand["stride"],
                act=expand["act_func"],
            )
        )
        width = expand["out_channels"]
        layers.append(RunLayer("pool", hw, width, width))  # global_avg_pool(keep_dim=True)
        mix = net_config["feature_mix_layer"]
        layers.append(
            RunLayer(
                "conv",
                1,
                mix["in_channels"],
                mix["out_channels"],
                mix["kernel_size"],
                mix["stride"],
                act=mix["act_func"],
            )
        )
        layers.append(RunLayer("logits", 1, classifier["in_features"], classifier["out_features"]))
    else:  # ProxylessNASNets.forward: feature mix, then pooling and the classifier
        mix = net_config["feature_mix_layer"]
        layers.append(
            RunLayer(
                "conv",
                hw,
                mix["in_channels"],
                mix["out_channels"],
                mix["kernel_size"],
                mix["stride"],
                act=mix["act_func"],
            )
        )
        layers.append(RunLayer("logits", hw, classifier["in_features"], classifier["out_features"]))
    return layers
