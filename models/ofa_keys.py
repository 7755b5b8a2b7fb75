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

The same key means different layers in different networks, so a name is read for one of
them (:class:`OfaNetwork`):

- ``PROXYLESS`` (the default): ProxylessNAS's networks and hwlat's own spaces. ``hs:0`` reads
  as hwlat's default ReLU6 and ``se:1`` as SE a quarter of the block's input wide; ReLU or
  swish blocks, h-swish convs and the MobileNetV3 head have no key and are refused.
- ``MOBILENETV3``: OFA's MobileNetV3 (``OFAMobileNetV3`` and its subnets), every key
  MBv3LatencyTable's ``predict_network_latency_given_config`` builds::

    Conv-input:224x224x3-output:112x112x16          3x3 stride-2 stem, h-swish
    expanded_conv-...-expand:MID-kernel:K-stride:S-idskip:I-se:0|1-hs:0|1
                                                    hs:0 is ReLU, hs:1 h-swish; se:1 is OFA's
                                                    SE on the expanded channels (``sem``)
    Conv_1-input:7x7x160-output:7x7x960             final expand 1x1, h-swish
    AvgPool2D-input:7x7x960-output:1x1x960          global average pooling (``pool``)
    Conv_2-input:1x1x960-output:1x1x1280            feature mix 1x1 on the pooled map, h-swish
    Logits-input:1x1x1280-output:1000               the classifier

  (mit-han-lab/once-for-all at f03b2673, ``ofa_mbv3.py``: ReLU and h-swish are its only
  activations, ``SEModule`` its only SE.) The feature mix has neither BN nor bias there; its
  ``conv`` key is hwlat's conv + BN, which inference folds into the same convolution.

Earlier hwlat exports spelt the stem ``Conv-...-kernel:K``, the head
``head-input:...-feature:F-output:N`` and SE as a trailing ``-se:1``; :func:`parse_ofa_name`
still reads them (as ``PROXYLESS``), so tables written then still import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Final

from models.errors import UserInputError
from models.layer_key import DEFAULT_ACTIVATION, Activation, LayerKey, Op
from models.search_space import SearchSpace

_SHAPE: Final = r"(\d+)x(\d+)x(\d+)"
_OFA_MBCONV: Final = re.compile(
    rf"^expanded_conv-input:{_SHAPE}-output:{_SHAPE}-expand:(\d+)-kernel:(\d+)-stride:(\d+)"
    r"-idskip:([01])(?:-se:([01])-hs:([01])|(-se:1))?$"
)
_OFA_CONV: Final = re.compile(rf"^(Conv|Conv_1)-input:{_SHAPE}-output:{_SHAPE}(?:-kernel:(\d+))?$")
_MBV3_CONV: Final = re.compile(rf"^(Conv|Conv_1|Conv_2)-input:{_SHAPE}-output:{_SHAPE}$")
_MBV3_POOL: Final = re.compile(rf"^AvgPool2D-input:{_SHAPE}-output:{_SHAPE}$")
_OFA_LOGITS: Final = re.compile(rf"^Logits-input:{_SHAPE}-output:(\d+)$")
_OFA_HEAD: Final = re.compile(r"^head-input:(\d+)x(\d+)x(\d+)-feature:(\d+)-output:(\d+)$")
# OFA documents ``Conv`` as "the initial 3x3 conv with stride 2"; ``Conv_1`` is 1x1, stride 1.
STEM_KERNEL: Final = 3


class OfaKeyError(UserInputError):
    """A name that is no OFA table key hwlat can read, or a layer no OFA key can name."""


class OfaNetwork(StrEnum):
    """Which network's table a key belongs to: that decides the layer it names."""

    PROXYLESS = "proxyless"  # ProxylessNAS's networks and hwlat's own spaces
    MOBILENETV3 = "mobilenetv3"  # OFA's MobileNetV3: ReLU/h-swish, SE on the expanded width


def needs_mbv3_keys(keys: Iterable[LayerKey]) -> bool:
    """Whether a table of ``keys`` must use MBv3LatencyTable's block keys (SE or h-swish)."""
    return any(k.op is Op.MBCONV and (k.se or k.act is not DEFAULT_ACTIVATION) for k in keys)


def ofa_name(
    key: LayerKey, mbv3: bool = False, *, network: OfaNetwork = OfaNetwork.PROXYLESS
) -> str:
    """The name OFA's ``query`` builds for ``key``; ``mbv3`` picks MBv3LatencyTable's block keys
    (``network=MOBILENETV3`` always uses them).

    Raise :class:`OfaKeyError` for a layer no OFA key can name.
    """
    if network is OfaNetwork.MOBILENETV3:
        return _mobilenetv3_name(key)
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


def parse_ofa_name(name: str, *, network: OfaNetwork = OfaNetwork.PROXYLESS) -> LayerKey:
    """The layer an OFA table entry names in ``network``'s table (for ``PROXYLESS``: either
    block key variant, or an older hwlat spelling)."""
    try:
        if network is OfaNetwork.MOBILENETV3:
            return _parse_mobilenetv3_name(name)
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
        _check_idskip(name, key, idskip)
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
            "layer variant in a ProxylessNAS table: read OFA's MobileNetV3 tables as such "
            "(network=mobilenetv3), or remove those entries to import the rest"
            if layer_type in ("AvgPool2D", "Conv_2")
            else ""
        )
    )


def _square(name: str, h: str, w: str) -> int:
    if h != w:
        raise OfaKeyError(f"{name!r}: input {h}x{w} is not square; hwlat keys are square")
    return int(h)


def _check_idskip(name: str, key: LayerKey, idskip: str) -> None:
    if key.has_residual != (idskip == "1"):
        raise OfaKeyError(
            f"{name!r}: idskip:{idskip} does not fit the shapes (a residual needs stride 1 "
            "and equal input and output channels)"
        )


def _check_output(name: str, key: LayerKey, ho: str, wo: str) -> None:
    if ho != wo or int(ho) != key.hw_out:
        raise OfaKeyError(
            f"{name!r}: output {ho}x{wo} does not follow from the input at stride {key.stride} "
            f"(expected {key.hw_out}x{key.hw_out})"
        )


# -- OFA's MobileNetV3 ---------------------------------------------------------------------------


def _mobilenetv3_name(key: LayerKey) -> str:
    shape_in = f"{key.hw}x{key.hw}x{key.cin}"
    shape_out = f"{key.hw_out}x{key.hw_out}x{key.cout}"
    if key.op is Op.MBCONV:
        if key.act not in (Activation.RELU, Activation.HSWISH):
            raise OfaKeyError(
                f"{key}: OFA's MobileNetV3 blocks are ReLU (hs:0) or h-swish (hs:1); a "
                f"{key.act} block has no key there"
            )
        if key.se and not key.se_mid:
            raise OfaKeyError(
                f"{key}: OFA's MobileNetV3 SE is a quarter of the expanded channels ('sem'); "
                "SE a quarter of the input ('se') has no key there"
            )
        return (
            f"expanded_conv-input:{shape_in}-output:{shape_out}-expand:{key.mid}"
            f"-kernel:{key.kernel}-stride:{key.stride}-idskip:{int(key.has_residual)}"
            f"-se:{int(key.se)}-hs:{int(key.act is Activation.HSWISH)}"
        )
    if key.op is Op.CONV and key.act is Activation.HSWISH:
        if key.kernel == STEM_KERNEL:
            return f"Conv-input:{shape_in}-output:{shape_out}"
        if key.kernel == 1 and key.stride == 1:
            # The feature mix runs on the pooled 1x1 map; the final expand before pooling.
            kind = "Conv_2" if key.hw == 1 else "Conv_1"
            return f"{kind}-input:{shape_in}-output:{shape_out}"
    if key.op is Op.POOL:
        return f"AvgPool2D-input:{shape_in}-output:1x1x{key.cin}"
    if key.op is Op.LOGITS:
        return f"Logits-input:{shape_in}-output:{key.classes}"
    if key.op is Op.SKIP:
        raise OfaKeyError(f"{key} has no entry in a lookup table (skip costs nothing)")
    raise OfaKeyError(
        f"{key}: OFA's MobileNetV3 table names only its h-swish convs: the 3x3 stem (Conv), the "
        "1x1 final expand (Conv_1) and the 1x1 feature mix on the pooled map (Conv_2)"
    )


def _parse_mobilenetv3_name(name: str) -> LayerKey:
    if match := _OFA_MBCONV.match(name):
        h, w, cin, ho, wo, cout, expand, k, s, idskip, se, hs, _old_se = match.groups()
        if se is None:
            raise OfaKeyError(
                f"{name!r}: MBv3LatencyTable's block keys end -se:0|1-hs:0|1; this is a "
                "ProxylessNAS key (read it with network=proxyless)"
            )
        if int(expand) % int(cin):
            raise OfaKeyError(
                f"{name!r}: expand:{expand} channels is not a whole multiple of the {cin} "
                "input channels; hwlat's MBConv expands by an integer ratio"
            )
        key = LayerKey(
            Op.MBCONV,
            _square(name, h, w),
            int(cin),
            int(cout),
            kernel=int(k),
            expansion=int(expand) // int(cin),
            stride=int(s),
            se=se == "1",
            se_mid=se == "1",
            act=Activation.HSWISH if hs == "1" else Activation.RELU,
        )
        _check_output(name, key, ho, wo)
        _check_idskip(name, key, idskip)
        return key
    if match := _MBV3_CONV.match(name):
        kind, h, w, cin, ho, wo, cout = match.groups()
        hw = _square(name, h, w)
        if kind == "Conv":
            stride = 1 if int(ho) == hw else 2
            key = LayerKey(
                Op.CONV,
                hw,
                int(cin),
                int(cout),
                kernel=STEM_KERNEL,
                stride=stride,
                act=Activation.HSWISH,
            )
        else:
            if (kind == "Conv_2") != (hw == 1):
                raise OfaKeyError(
                    f"{name!r}: Conv_2 (the feature mix) runs on the pooled 1x1 map and "
                    "Conv_1 (the final expand) before pooling"
                )
            key = LayerKey(Op.CONV, hw, int(cin), int(cout), kernel=1, act=Activation.HSWISH)
        _check_output(name, key, ho, wo)
        return key
    if match := _MBV3_POOL.match(name):
        h, w, cin, ho, wo, cout = match.groups()
        if (ho, wo, cout) != ("1", "1", cin):
            raise OfaKeyError(
                f"{name!r}: global average pooling gives 1x1x{cin}, not {ho}x{wo}x{cout}"
            )
        return LayerKey(Op.POOL, _square(name, h, w), int(cin), int(cin))
    if match := _OFA_LOGITS.match(name):
        h, w, cin, classes = match.groups()
        return LayerKey(
            Op.LOGITS, _square(name, h, w), int(cin), int(classes), classes=int(classes)
        )
    layer_type = name.split("-", 1)[0]
    raise OfaKeyError(
        f"unknown lookup-table entry {name!r} for OFA's MobileNetV3; its table has Conv, "
        f"expanded_conv, Conv_1, AvgPool2D, Conv_2 and Logits (not {layer_type!r})"
    )


def network_of_space(space: SearchSpace | None) -> OfaNetwork:
    """Which network's keys name a space's layers: OFA's MobileNetV3 pools before its feature
    mix (MBv3LatencyTable's ``AvgPool2D``), so a space with a pool layer is read with its keys;
    any other with ProxylessNAS's."""
    if space is not None and any(
        key.op is Op.POOL for position in space.positions for key in position.keys
    ):
        return OfaNetwork.MOBILENETV3
    return OfaNetwork.PROXYLESS
