"""OFA's and ProxylessNAS's latency-table keys, to and from layer keys (pure, no NumPy).

Keys exactly as OFA's latency tables build them in ``query(...)``
(``ofa/nas/efficiency_predictor/latency_lookup_table.py``, mit-han-lab/once-for-all at
f03b2673db313b9167e2a1c2b7a5cad540cc1313)::

    Conv-input:224x224x3-output:112x112x32          the 3x3 stem
    expanded_conv-input:112x112x16-output:56x56x24-expand:3-kernel:3-stride:2-idskip:0
                                                    a block, ProxylessNASLatencyTable
    expanded_conv-...-expand:48-kernel:3-stride:2-idskip:0-se:1-hs:0
                                                    a block, MBv3LatencyTable: expand as
                                                    channels, then SE and h-swish flags
    Conv_1-input:7x7x320-output:7x7x1280            the 1x1 feature-mix conv
    Logits-input:7x7x1280-output:1000               pooling + classifier

``hs:0`` reads as hwlat's default ReLU6 (OFA's MobileNetV3 uses ReLU there; a runtime fuses
either into the convolution), so ReLU or swish blocks have no OFA key and are refused. Likewise
``se:1`` reads as hwlat's ``se`` (a quarter of the block's input wide), so an ``sem`` block (OFA's
own SE, a quarter of the expanded channels) is refused rather than written under a name that
reads back as another layer. MBv3LatencyTable's ``AvgPool2D`` and ``Conv_2`` entries are
neither written nor read: a ``pool`` key has no name here.
Earlier hwlat exports spelt the stem ``Conv-...-kernel:K``, the head
``head-input:...-feature:F-output:N`` and SE as a trailing ``-se:1``; :func:`parse_ofa_name`
still reads them, so tables written then still import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from models.errors import UserInputError
from models.layer_key import DEFAULT_ACTIVATION, Activation, LayerKey, Op

_SHAPE: Final = r"(\d+)x(\d+)x(\d+)"
_OFA_MBCONV: Final = re.compile(
    rf"^expanded_conv-input:{_SHAPE}-output:{_SHAPE}-expand:(\d+)-kernel:(\d+)-stride:(\d+)"
    r"-idskip:([01])(?:-se:([01])-hs:([01])|(-se:1))?$"
)
_OFA_CONV: Final = re.compile(rf"^(Conv|Conv_1)-input:{_SHAPE}-output:{_SHAPE}(?:-kernel:(\d+))?$")
_OFA_LOGITS: Final = re.compile(rf"^Logits-input:{_SHAPE}-output:(\d+)$")
_OFA_HEAD: Final = re.compile(r"^head-input:(\d+)x(\d+)x(\d+)-feature:(\d+)-output:(\d+)$")
# OFA documents ``Conv`` as "the initial 3x3 conv with stride 2"; ``Conv_1`` is 1x1, stride 1.
STEM_KERNEL: Final = 3


class OfaKeyError(UserInputError):
    """A name that is no OFA table key hwlat can read, or a layer no OFA key can name."""


def needs_mbv3_keys(keys: Iterable[LayerKey]) -> bool:
    """Whether a table of ``keys`` must use MBv3LatencyTable's block keys (SE or h-swish)."""
    return any(k.op is Op.MBCONV and (k.se or k.act is not DEFAULT_ACTIVATION) for k in keys)


def ofa_name(key: LayerKey, mbv3: bool = False) -> str:
    """The name OFA's ``query`` builds for ``key``; ``mbv3`` picks MBv3LatencyTable's block keys.

    Raise :class:`OfaKeyError` for a layer no OFA key can name.
    """
    shape_in = f"{key.hw}x{key.hw}x{key.cin}"
    shape_out = f"{key.hw_out}x{key.hw_out}x{key.cout}"
    if key.op is Op.MBCONV:
        if key.act not in (DEFAULT_ACTIVATION, Activation.HSWISH):
            raise OfaKeyError(
                f"{key}: OFA's block keys tell only h-swish (hs:1) from ReLU6 (hs:0); "
                f"a {key.act} block has no key there"
            )
        if key.se_mid:
            raise OfaKeyError(
                f"{key}: OFA's se:1 reads back as hwlat's 'se' (a quarter of the block's "
                f"input); this 'sem' block's SE (OFA's own, {key.se_channels} channels from the "
                f"expanded {key.mid}) would come back as another layer, so it has no key here"
            )
        if (key.se or key.act is Activation.HSWISH) and not mbv3:
            raise OfaKeyError(
                f"{key}: ProxylessNASLatencyTable's keys have no SE or h-swish; "
                "name it with MBv3LatencyTable's keys (mbv3=True)"
            )
        name = f"expanded_conv-input:{shape_in}-output:{shape_out}"
        expand = key.mid if mbv3 else key.expansion
        name += f"-expand:{expand}-kernel:{key.kernel}-stride:{key.stride}"
        name += f"-idskip:{int(key.has_residual)}"
        if mbv3:
            name += f"-se:{int(key.se)}-hs:{int(key.act is Activation.HSWISH)}"
        return name
    if key.op is Op.CONV and key.act is DEFAULT_ACTIVATION:
        if key.kernel == STEM_KERNEL:
            return f"Conv-input:{shape_in}-output:{shape_out}"
        if key.kernel == 1 and key.stride == 1:
            return f"Conv_1-input:{shape_in}-output:{shape_out}"
    if key.op is Op.LOGITS:
        return f"Logits-input:{shape_in}-output:{key.classes}"
    if key.op is Op.HEAD:
        raise OfaKeyError(
            f"{key}: OFA's tables measure the head as Conv_1 and Logits; profile "
            f"conv_hw{key.hw}_i{key.cin}_o{key.cout}_k1_s1 and "
            f"logits_hw{key.hw}_i{key.cout}_c{key.classes} instead (the built-in spaces do)"
        )
    if key.op is Op.SKIP:
        raise OfaKeyError(f"{key} has no entry in a lookup table (skip costs nothing)")
    if key.op is Op.POOL:
        raise OfaKeyError(
            f"{key}: a global pool on its own (MBv3LatencyTable's AvgPool2D) has no key in the "
            "OFA tables hwlat writes and reads (Conv, expanded_conv, Conv_1, Logits); take "
            "the runtime table of a space with a pool layer as format=json"
        )
    raise OfaKeyError(
        f"{key}: OFA's tables name only the 3x3 stem (Conv) and the 1x1 stride-1 feature-mix "
        "conv (Conv_1), both with ReLU6"
    )


def parse_ofa_name(name: str) -> LayerKey:
    """The layer an OFA table entry names (either key variant, or an older hwlat spelling)."""
    try:
        return _parse_ofa_name(name)
    except OfaKeyError:
        raise
    except ValueError as error:  # a well-formed name of an impossible layer: an even kernel
        raise OfaKeyError(f"{name!r}: {error}") from None


def _parse_ofa_name(name: str) -> LayerKey:
    if match := _OFA_MBCONV.match(name):
        h, w, cin, ho, wo, cout, expand, k, s, idskip, se, hs, old_se = match.groups()
        mbv3 = se is not None
        expansion = int(expand)
        if mbv3:
            if int(expand) % int(cin):
                raise OfaKeyError(
                    f"{name!r}: expand:{expand} channels is not a whole multiple of the "
                    f"{cin} input channels; hwlat's MBConv expands by an integer ratio"
                )
            expansion = int(expand) // int(cin)
        key = LayerKey(
            Op.MBCONV,
            _square(name, h, w),
            int(cin),
            int(cout),
            kernel=int(k),
            expansion=expansion,
            stride=int(s),
            se=se == "1" or old_se is not None,
            act=Activation.HSWISH if hs == "1" else DEFAULT_ACTIVATION,
        )
        _check_output(name, key, ho, wo)
        if key.has_residual != (idskip == "1"):
            raise OfaKeyError(
                f"{name!r}: idskip:{idskip} does not fit the shapes (a residual needs stride 1 "
                "and equal input and output channels)"
            )
        return key
    if match := _OFA_CONV.match(name):
        kind, h, w, cin, ho, wo, cout, kernel = match.groups()
        hw = _square(name, h, w)
        if kind == "Conv_1":
            if kernel is not None:
                raise OfaKeyError(f"{name!r}: Conv_1 is a 1x1 conv and takes no kernel")
            key = LayerKey(Op.CONV, hw, int(cin), int(cout), kernel=1, stride=1)
        else:
            stride = 1 if int(ho) == hw else 2
            size = STEM_KERNEL if kernel is None else int(kernel)
            key = LayerKey(Op.CONV, hw, int(cin), int(cout), kernel=size, stride=stride)
        _check_output(name, key, ho, wo)
        return key
    if match := _OFA_LOGITS.match(name):
        h, w, cin, classes = match.groups()
        return LayerKey(
            Op.LOGITS, _square(name, h, w), int(cin), int(classes), classes=int(classes)
        )
    if match := _OFA_HEAD.match(name):
        h, w, cin, feature, classes = match.groups()
        hw = _square(name, h, w)
        return LayerKey(Op.HEAD, hw, int(cin), int(feature), classes=int(classes))
    layer_type = name.split("-", 1)[0]
    raise OfaKeyError(
        f"unknown lookup-table entry {name!r}; hwlat reads Conv, expanded_conv, Conv_1 and "
        f"Logits (ProxylessNAS's layers)"
        + (
            f"; {layer_type} (MobileNetV3's separate pooling and second 1x1 conv) has no hwlat "
            "import (their layers, pool and a 1x1 h-swish conv at 1x1, are measured under "
            "hwlat's own keys): remove those entries to import the rest"
            if layer_type in ("AvgPool2D", "Conv_2")
            else ""
        )
    )


def _square(name: str, h: str, w: str) -> int:
    if h != w:
        raise OfaKeyError(f"{name!r}: input {h}x{w} is not square; hwlat keys are square")
    return int(h)


def _check_output(name: str, key: LayerKey, ho: str, wo: str) -> None:
    if ho != wo or int(ho) != key.hw_out:
        raise OfaKeyError(
            f"{name!r}: output {ho}x{wo} does not follow from the input at stride {key.stride} "
            f"(expected {key.hw_out}x{key.hw_out})"
        )
