"""Layer keys: one layer variant named completely by a compact, round-tripping string.

Grammar (tokens joined by ``_``; the operation first, the rest in any order when parsing,
canonical order when printing)::

    mbconv_hw56_i24_o40_k5_e6_s2[_se|_sem][_<act>]  inverted residual block (MobileNetV2 MBConv)
    skip_hw28_i40_o40                           identity (the searchable "skip" candidate)
    conv_hw224_i3_o32_k3_s2[_<act>]             plain conv + BN + activation (the stem)
    head_hw7_i320_o1280_c1000[_<act>]           1x1 conv + BN + act, global pool, FC to classes
    logits_hw7_i1280_c1000                      global average pool, FC to classes
    pool_hw7_i960                               global average pool alone (OFA's AvgPool2D)

``hw`` is the (square) *input* resolution, ``i``/``o`` input and output channels, ``k`` the
kernel, ``e`` the expansion ratio, ``s`` the stride, ``c`` the number of classes. ``se`` adds
squeeze-and-excitation a quarter of the block's input wide (EfficientNet, MnasNet); ``sem`` adds
it a quarter of the expanded channels wide, rounded to a multiple of 8 (OFA's MobileNetV3).
``<act>`` is one of ``relu``, ``hswish``, ``swish`` and is omitted for the default ``relu6``.
Convolutions use "same" padding, so the output resolution is ``ceil(hw / s)``.

``head`` is the classifier measured as one layer; the built-in spaces now measure its two parts
on their own, as OFA's and ProxylessNAS's tables do: the 1x1 feature-mix conv as a ``conv``
key (``conv_hw7_i320_o1280_k1_s1``, their ``Conv_1``) and pooling + classifier as ``logits``
(their ``Logits``). ``head`` stays a valid key so that stored measurements keep their meaning.
A ``logits`` key's output is its classes, so its ``cout`` equals ``classes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from models.errors import UserInputError


class InvalidLayerKey(UserInputError):
    """A malformed layer key, or one naming an impossible layer; the message names the token."""


class Op(StrEnum):
    MBCONV = "mbconv"
    SKIP = "skip"
    CONV = "conv"
    HEAD = "head"
    LOGITS = "logits"
    POOL = "pool"


class Activation(StrEnum):
    RELU6 = "relu6"
    RELU = "relu"
    HSWISH = "hswish"
    SWISH = "swish"


DEFAULT_ACTIVATION: Final = Activation.RELU6
# Squeeze-and-excitation width as in EfficientNet/MnasNet: a quarter of the block's input;
# ``sem`` keys: OFA's, a quarter of the expanded channels, rounded to CHANNEL_DIVISOR.
SE_RATIO: Final = 0.25
SE_MID_REDUCTION: Final = 4
# OFA's MyNetwork.CHANNEL_DIVISIBLE: widths it derives are multiples of this.
CHANNEL_DIVISOR: Final = 8
BYTES_PER_ELEMENT_FP32: Final = 4

_INT_TOKENS: Final = {
    "hw": "hw",
    "i": "cin",
    "o": "cout",
    "k": "kernel",
    "e": "expansion",
    "s": "stride",
    "c": "classes",
}
# Which integer fields each operation takes; anything else in a key is an error.
_FIELDS: Final[dict[Op, tuple[str, ...]]] = {
    Op.MBCONV: ("hw", "cin", "cout", "kernel", "expansion", "stride"),
    Op.SKIP: ("hw", "cin", "cout"),
    Op.CONV: ("hw", "cin", "cout", "kernel", "stride"),
    Op.HEAD: ("hw", "cin", "cout", "classes"),
    Op.LOGITS: ("hw", "cin", "classes"),
    Op.POOL: ("hw", "cin"),
}
# Operations whose output is the class scores: nothing can follow them in a network.
CLASSIFIERS: Final = frozenset({Op.HEAD, Op.LOGITS})
# Operations without an activation of their own (and so no activation token).
_NO_ACTIVATION: Final = frozenset({Op.SKIP, Op.LOGITS, Op.POOL})
_PREFIX_OF: Final = {field: prefix for prefix, field in _INT_TOKENS.items()}


@dataclass(frozen=True, slots=True, order=True)
class LayerKey:
    """One layer variant. Construct through the class or :func:`parse`; both validate."""

    op: Op
    hw: int
    cin: int
    cout: int
    kernel: int = 1
    expansion: int = 1
    stride: int = 1
    se: bool = False
    act: Activation = DEFAULT_ACTIVATION
    classes: int = 0
    # With ``se``: the SE block is a quarter of the expanded channels wide (OFA), not of the input.
    se_mid: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "op", Op(self.op))
        object.__setattr__(self, "act", Activation(self.act))
        _validate(self)

    # -- naming -----------------------------------------------------------------------------

    def __str__(self) -> str:
        parts = [self.op.value]
        parts += [f"{_PREFIX_OF[field]}{getattr(self, field)}" for field in _FIELDS[self.op]]
        if self.se:
            parts.append("sem" if self.se_mid else "se")
        if self.op not in _NO_ACTIVATION and self.act is not DEFAULT_ACTIVATION:
            parts.append(self.act.value)
        return "_".join(parts)

    @property
    def name(self) -> str:
        return str(self)

    # -- shapes -----------------------------------------------------------------------------

    @property
    def hw_out(self) -> int:
        if self.op in CLASSIFIERS or self.op is Op.POOL:
            return 1
        return math.ceil(self.hw / self.stride)

    @property
    def mid(self) -> int:
        """Channels inside the block: the expanded width of an MBConv."""
        return self.cin * self.expansion if self.op is Op.MBCONV else self.cin

    @property
    def se_channels(self) -> int:
        if not self.se:
            return 0
        if self.se_mid:
            return make_divisible(self.mid // SE_MID_REDUCTION, CHANNEL_DIVISOR)
        return max(1, int(self.cin * SE_RATIO))

    @property
    def has_residual(self) -> bool:
        return self.op is Op.MBCONV and self.stride == 1 and self.cin == self.cout

    @property
    def input_shape_nhwc(self) -> tuple[int, int, int, int]:
        return (1, self.hw, self.hw, self.cin)

    @property
    def output_shape_nhwc(self) -> tuple[int, ...]:
        if self.op in CLASSIFIERS:
            return (1, self.classes)
        return (1, self.hw_out, self.hw_out, self.cout)

    # -- cost -------------------------------------------------------------------------------

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the convolutions and fully connected layers (batch 1).

        Element-wise work (BN folded into the conv, activations, the SE gate, the residual
        add, pooling) is not counted, as in the usual MAC tables of the NAS literature.
        """
        hw_in2, hw_out2 = self.hw * self.hw, self.hw_out * self.hw_out
        if self.op is Op.SKIP:
            return 0
        if self.op is Op.CONV:
            return hw_out2 * self.cin * self.cout * self.kernel**2
        if self.op is Op.HEAD:
            return hw_in2 * self.cin * self.cout + self.cout * self.classes
        if self.op is Op.LOGITS:
            return self.cin * self.classes
        if self.op is Op.POOL:
            return 0
        mid = self.mid
        expand = hw_in2 * self.cin * mid if self.expansion > 1 else 0
        depthwise = hw_out2 * mid * self.kernel**2
        se = 2 * mid * self.se_channels
        project = hw_out2 * mid * self.cout
        return expand + depthwise + se + project

    @property
    def params(self) -> int:
        """Trainable parameters: conv/FC weights and biases, BN scale and shift."""
        if self.op is Op.SKIP:
            return 0
        if self.op is Op.CONV:
            return self.cin * self.cout * self.kernel**2 + 2 * self.cout
        if self.op is Op.HEAD:
            return self.cin * self.cout + 2 * self.cout + self.cout * self.classes + self.classes
        if self.op is Op.LOGITS:
            return self.cin * self.classes + self.classes
        if self.op is Op.POOL:
            return 0
        mid, se = self.mid, self.se_channels
        expand = self.cin * mid + 2 * mid if self.expansion > 1 else 0
        depthwise = mid * self.kernel**2 + 2 * mid
        squeeze = (mid * se + se + se * mid + mid) if self.se else 0
        project = mid * self.cout + 2 * self.cout
        return expand + depthwise + squeeze + project

    @property
    def activation_bytes(self) -> int:
        """fp32 bytes of the tensors the layer reads and writes (input, intermediates, output)."""
        if self.op is Op.SKIP:
            return 0
        hw_in2, hw_out2 = self.hw * self.hw, self.hw_out * self.hw_out
        if self.op is Op.CONV:
            elements = hw_in2 * self.cin + hw_out2 * self.cout
        elif self.op is Op.HEAD:
            elements = hw_in2 * (self.cin + self.cout) + self.cout + self.classes
        elif self.op is Op.LOGITS:
            elements = hw_in2 * self.cin + self.cin + self.classes
        elif self.op is Op.POOL:
            elements = hw_in2 * self.cin + self.cin
        else:
            expanded = hw_in2 * self.mid if self.expansion > 1 else 0
            elements = hw_in2 * self.cin + expanded + hw_out2 * self.mid + hw_out2 * self.cout
        return elements * BYTES_PER_ELEMENT_FP32


def make_divisible(value: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, at least ``divisor``, and never
    more than 10% below ``value``: OFA's ``make_divisible`` (ofa/utils/common_tools.py), by
    which its spaces derive every width from a base width and a multiplier."""
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def parse(text: str) -> LayerKey:
    """Parse a layer key string; raise :class:`InvalidLayerKey` naming the bad token."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidLayerKey(
            f"empty layer key {text!r}; expected e.g. 'mbconv_hw56_i24_o40_k5_e6_s2'"
        )
    tokens = text.strip().split("_")
    op_token, rest = tokens[0], tokens[1:]
    try:
        op = Op(op_token)
    except ValueError:
        raise InvalidLayerKey(
            f"layer key {text!r}: unknown operation {op_token!r}; "
            f"expected one of {', '.join(o.value for o in Op)}"
        ) from None
    values: dict[str, int] = {}
    se = se_mid = False
    act = DEFAULT_ACTIVATION
    seen: set[str] = set()
    for token in rest:
        name = _token_name(token, text)
        if name in seen:
            raise InvalidLayerKey(f"layer key {text!r}: token {token!r} repeats {name!r}")
        seen.add(name)
        if token in ("se", "sem"):
            se, se_mid = True, token == "sem"
        elif token in Activation.__members__.values():
            act = Activation(token)
        else:
            field = _INT_TOKENS[name]
            if field not in _FIELDS[op]:
                raise InvalidLayerKey(f"layer key {text!r}: token {token!r} does not apply to {op}")
            values[field] = int(token[len(name) :])
    missing = [f"{_PREFIX_OF[f]}<int>" for f in _FIELDS[op] if f not in values]
    if missing:
        raise InvalidLayerKey(f"layer key {text!r}: missing token(s) {', '.join(missing)} for {op}")
    if op in _NO_ACTIVATION and (se or act is not DEFAULT_ACTIVATION):
        raise InvalidLayerKey(f"layer key {text!r}: {op} takes no 'se' or activation token")
    if op is Op.LOGITS:
        values["cout"] = values["classes"]
    if op is Op.POOL:
        values["cout"] = values["cin"]
    return LayerKey(op=op, se=se, act=act, se_mid=se_mid, **values)


def _token_name(token: str, text: str) -> str:
    """The name a token sets: 'se', an activation, or an integer prefix such as 'hw'."""
    if token in ("se", "sem"):
        return "se"
    if token in Activation.__members__.values():
        return "act"
    prefix = token.rstrip("0123456789")
    digits = token[len(prefix) :]
    if prefix not in _INT_TOKENS or not digits or (len(digits) > 1 and digits[0] == "0"):
        raise InvalidLayerKey(
            f"layer key {text!r}: bad token {token!r}; expected hw<int>, i<int>, o<int>, "
            f"k<int>, e<int>, s<int>, c<int>, 'se', 'sem' or an activation "
            f"({', '.join(a.value for a in Activation)})"
        )
    return prefix


def _validate(key: LayerKey) -> None:
    def bad(token: str, why: str) -> InvalidLayerKey:
        return InvalidLayerKey(f"impossible layer: {token} {why}")

    for field in ("hw", "cin", "cout", "kernel", "expansion", "stride", "classes"):
        value = getattr(key, field)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{field} must be an int, got {value!r}")
    for flag in ("se", "se_mid"):
        if not isinstance(getattr(key, flag), bool):
            raise TypeError(f"{flag} must be a bool, got {getattr(key, flag)!r}")
    if key.se_mid and not (key.se and key.op is Op.MBCONV):
        raise bad("sem", "is squeeze-and-excitation of an MBConv; it needs se on an mbconv key")
    if key.hw < 1:
        raise bad(f"hw{key.hw}", "is not a positive resolution")
    if key.cin < 1:
        raise bad(f"i{key.cin}", "has zero input channels")
    if key.op is Op.LOGITS and key.classes < 1:  # before cout, which is its classes
        raise bad(f"c{key.classes}", "needs at least one class")
    if key.cout < 1:
        raise bad(f"o{key.cout}", "has zero output channels")
    if key.op is Op.SKIP:
        if key.cin != key.cout:
            raise bad(f"o{key.cout}", f"changes channels (i{key.cin}); skip is an identity")
        if key.stride != 1:
            raise bad(f"s{key.stride}", "on skip; an identity cannot downsample")
        if key.kernel != 1 or key.expansion != 1 or key.se:
            raise bad("skip", "takes no kernel, expansion or SE")
        return
    if key.op is Op.HEAD:
        if key.classes < 1:
            raise bad(f"c{key.classes}", "needs at least one class")
        if key.kernel != 1 or key.expansion != 1 or key.stride != 1 or key.se:
            raise bad("head", "takes no kernel, expansion, stride or SE")
        return
    if key.op is Op.POOL:
        if key.cout != key.cin:
            raise bad(f"o{key.cout}", f"on pool must equal its input channels (i{key.cin})")
        if (key.kernel, key.expansion, key.stride) != (1, 1, 1) or key.se:
            raise bad("pool", "takes no kernel, expansion, stride or SE")
        if key.act is not DEFAULT_ACTIVATION or key.classes:
            raise bad("pool", "has no activation and no classes")
        return
    if key.op is Op.LOGITS:
        if key.cout != key.classes:
            raise bad(f"o{key.cout}", f"on logits must equal its classes (c{key.classes})")
        if (key.kernel, key.expansion, key.stride) != (1, 1, 1) or key.se:
            raise bad("logits", "takes no kernel, expansion, stride or SE")
        if key.act is not DEFAULT_ACTIVATION:
            raise bad(key.act.value, "on logits: pooling and a linear classifier have none")
        return
    if key.classes != 0:
        raise bad(f"c{key.classes}", f"applies only to head and logits, not {key.op}")
    if key.kernel < 1 or key.kernel % 2 == 0:
        raise bad(f"k{key.kernel}", "is not an odd positive kernel size")
    if key.stride not in (1, 2):
        raise bad(f"s{key.stride}", "is not 1 or 2")
    if key.expansion < 1:
        raise bad(f"e{key.expansion}", "is an expansion below 1")
    if key.op is Op.CONV and (key.expansion != 1 or key.se):
        raise bad("conv", "takes no expansion or SE")
