"""A drop-in for OFA's latency lookup tables, answered by the hwlat service.

OFA's search code asks its table ``query(l_type, input_shape, output_shape, ...)`` per layer
and ``predict_network_latency_given_config(net_config, image_size)`` per candidate network
(``ofa/nas/efficiency_predictor``: ``ProxylessNASLatencyTable``, ``MBv3LatencyTable``).
:class:`HwlatLatencyTable` answers both from a device's current predictor, so switching is
one line::

    latency_table = HwlatLatencyTable("http://127.0.0.1:8000", device_id=1, token="hwlat_...")

A net config is walked as the table of its network walks it: a ProxylessNAS config (first
conv, blocks, feature mix, classifier) as ``ProxylessNASLatencyTable``, a MobileNetV3 one (it
has a ``final_expand_layer``) as ``MBv3LatencyTable``: first conv, blocks, final expand,
pooling, feature mix on the pooled map, classifier. With a ``space``, :meth:`predict_ofa_config`
takes a subnet in OFA's own ``{"ks", "e", "d", "r"}`` encoding (:mod:`models.ofa_config`).

Each query is turned into the OFA key OFA would look up, and that key into an hwlat layer key
(:mod:`models.ofa_keys`), so the estimator and a ``format=ofa`` export agree on every name.
Values come from ``POST /v1/predict`` with ``layers``: the measured value where the device
has one, the layer model's estimate elsewhere. An estimate is never silent: its layer key is
added to :attr:`HwlatLatencyTable.estimated_layers` and an :class:`EstimatedLatencyWarning`
names it, once. A layer no predictor can answer raises the service's error, never a
``KeyError`` and never a zero. Every value is fetched once and cached.

**Calibration.** OFA's tables are plain sums, so by default this one is too: a network's
latency is the sum of its layers, which is what ``POST /v1/predict`` answers for the same
network as ``layers`` without a ``space``. With ``calibrated=True`` (and ``space``) it is
``a·Σ + b`` with the space's end-to-end calibration, what ``POST /v1/predict`` answers for
the architecture: use that when absolute milliseconds matter (a latency constraint), and
only for networks of that space, which is checked.

No NumPy: this module imports only the client, ``models``' vocabulary and the pure
``predictor.calibration``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from latency_api.client import HwlatClient
from latency_api.schemas.predictors import TableCalibration
from models import DEFAULT_SPACE
from models.layer_key import LayerKey, Op
from models.ofa_config import from_ofa_config
from models.ofa_keys import OfaKeyError, OfaNetwork, network_of_space, parse_ofa_name
from models.search_space import SearchSpace
from models.spaces import get_space
from predictor.calibration import calibrated_ms

# The most keys one prefetch sends: well inside the service's request limits.
_FETCH_BATCH = 10_000
# How often a calibrated prediction asks again when the predictor changes under it.
_ATTEMPTS = 3


class EstimatedLatencyWarning(UserWarning):
    """A latency the layer model estimated, because the device never measured that layer."""


class PredictorChangedWarning(UserWarning):
    """The device got a new predictor version; cached values were dropped and refetched."""


class HwlatLatencyTable:
    """OFA's latency-table interface (``query``, ``predict_network_latency_given_config``,
    ``predict_network_latency``), answered by an hwlat service for one device.

    ``service`` is a :class:`HwlatClient` or the service's URL (then ``token`` is used and the
    table owns, and closes, its client). ``space`` (a name, or a :class:`SearchSpace`, e.g.
    one loaded from a spec file) prefetches every variant of that search space in one request;
    it is needed for ``calibrated=True`` and :meth:`predict_ofa_config`.

    ``network`` says which table :meth:`query` stands in for, which decides what a key means
    (:class:`models.ofa_keys.OfaNetwork`): ``"mobilenetv3"`` reads keys as OFA's MobileNetV3
    table holds them (ReLU blocks at ``hs:0``, SE on the expanded channels, ``AvgPool2D`` and
    ``Conv_2``), ``"proxyless"`` as ProxylessNAS's (ReLU6). Left out, it is ``mobilenetv3`` for
    a space whose head pools before its feature mix, as OFA's MobileNetV3 does, and
    ``proxyless`` otherwise. Net configs are walked by their own network whatever it says.
    """

    def __init__(
        self,
        service: HwlatClient | str,
        device_id: int,
        *,
        token: str | None = None,
        space: str | SearchSpace | None = None,
        calibrated: bool = False,
        network: OfaNetwork | str | None = None,
    ) -> None:
        if calibrated and space is None:
            raise ValueError(
                "calibrated=True applies a space's a·Σ+b, fitted on networks of that space; "
                f"pass space={DEFAULT_SPACE!r} (or another built-in space)"
            )
        resolved = get_space(space) if isinstance(space, str) else space
        if calibrated and resolved is not None and not resolved.fixed_shape:
            raise ValueError(
                f"calibrated=True checks that a network is one of {resolved.name} by its fixed "
                "layers, and an elastic space has none; use calibrated=False (OFA's tables are "
                "plain sums too), or HwlatClient.predict_ofa for the space's a·Σ+b"
            )
        self._owns_client = isinstance(service, str)
        self.client = HwlatClient(service, token) if isinstance(service, str) else service
        self.device_id = device_id
        self.space: SearchSpace | None = resolved
        self.calibrated = calibrated
        self.network = OfaNetwork(network) if network is not None else network_of_space(resolved)
        self.predictor_version: int | None = None
        self.estimated_layers: set[str] = set()
        self._ms: dict[LayerKey, float] = {}
        self._calibration: tuple[TableCalibration, int] | None = None
        if self.space is not None:
            try:
                self.prefetch(self.space.variants())
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> HwlatLatencyTable:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- OFA's interface ---------------------------------------------------------------------

    def query(
        self,
        l_type: str,
        input_shape: Sequence[int] | str,
        output_shape: Sequence[int] | str,
        expand: int | None = None,
        ks: int | None = None,
        stride: int | None = None,
        id_skip: int | None = None,
        *,
        mid: int | None = None,
        se: int | None = None,
        h_swish: int | None = None,
    ) -> float:
        """One layer's latency in ms, asked as ProxylessNASLatencyTable asks (``expand`` a
        ratio) or as MBv3LatencyTable asks (``mid`` channels, ``se``, ``h_swish``); the key is
        read as the table's ``network`` holds it."""
        key = self.layer_key(
            l_type,
            input_shape,
            output_shape,
            expand,
            ks,
            stride,
            id_skip,
            mid=mid,
            se=se,
            h_swish=h_swish,
        )
        return self._values([key])[0]

    def predict_network_latency_given_config(
        self, net_config: Mapping[str, Any], image_size: int = 224
    ) -> float:
        """A network's latency in ms from its OFA config (``ProxylessNASNets.config``,
        ``MobileNetV3.config``, or an OFA network's ``get_active_net_config()``), walked as
        OFA's table for that network walks it."""
        return self._latency(self.network_keys(net_config, image_size))

    def predict_ofa_config(self, config: Mapping[str, Any]) -> float:
        """A subnet's latency in ms from OFA's ``{"ks", "e", "d", "r"}`` encoding of it
        (``set_active_subnet``'s arguments and the resolution; the ``image_size`` of OFA's
        ``arch_dict`` stands for ``r``), as a network of the table's ``space``."""
        return self._latency(self.ofa_config_keys(config), in_space=True)

    def ofa_config_keys(self, config: Mapping[str, Any]) -> list[LayerKey]:
        """The layers that run in the subnet ``config`` names, in order (a slot past its
        stage's depth runs nothing and is left out, as OFA leaves it out)."""
        if self.space is None:
            raise ValueError(
                "an OFA config ({ks, e, d, r}) names a subnet of a space: pass space= "
                "(a name, or a SearchSpace loaded from its spec file)"
            )
        config = dict(config)
        if "image_size" in config:  # OFA's arch_dict (its efficiency models, its search)
            size = config.pop("image_size")
            config.setdefault("r", [size])
        arch = from_ofa_config(self.space, config)
        return [key for key in self.space.network(arch) if key.op is not Op.SKIP]

    def _latency(self, keys: list[LayerKey], *, in_space: bool = False) -> float:
        if not self.calibrated:
            return sum(self._values(keys))
        for _ in range(_ATTEMPTS):
            calibration, version = self._space_calibration(keys, in_space)
            total = sum(self._values(keys))
            if version == self.predictor_version:
                return calibrated_ms(calibration, total)
            self.refresh()  # a new version between the two requests: ask both again
        raise RuntimeError(
            f"device {self.device_id}'s predictor changed {_ATTEMPTS} times while one network "
            "was being predicted; try again once fitting has stopped"
        )

    def predict_network_latency(self, net: Any, image_size: int = 224) -> float:
        """A network object's latency in ms: anything with OFA's ``config`` property."""
        return self.predict_network_latency_given_config(net.config, image_size)

    # -- the mapping -------------------------------------------------------------------------

    @staticmethod
    def ofa_key(
        l_type: str,
        input_shape: Sequence[int] | str,
        output_shape: Sequence[int] | str,
        expand: int | None = None,
        ks: int | None = None,
        stride: int | None = None,
        id_skip: int | None = None,
        *,
        mid: int | None = None,
        se: int | None = None,
        h_swish: int | None = None,
    ) -> str:
        """The lookup-table key OFA's ``query`` would build from the same arguments."""
        parts = [l_type, f"input:{_shape(input_shape)}", f"output:{_shape(output_shape)}"]
        if l_type != "expanded_conv":
            return "-".join(parts)
        mbv3 = mid is not None or se is not None or h_swish is not None
        needed = {"ks": ks, "stride": stride, "id_skip": id_skip}
        needed |= {"mid": mid, "se": se, "h_swish": h_swish} if mbv3 else {"expand": expand}
        absent = [name for name, value in needed.items() if value is None]
        if absent:
            raise ValueError(
                f"an expanded_conv query needs {', '.join(needed)}; {', '.join(absent)} missing"
            )
        parts.append(f"expand:{mid if mbv3 else expand}")
        parts += [f"kernel:{ks}", f"stride:{stride}", f"idskip:{id_skip}"]
        if mbv3:
            parts += [f"se:{se}", f"hs:{h_swish}"]
        return "-".join(parts)

    def layer_key(self, *args: Any, **kwargs: Any) -> LayerKey:
        """The hwlat layer an OFA query names (same arguments as :meth:`query`), read as the
        table's ``network`` holds it."""
        return _parsed(self.ofa_key(*args, **kwargs), self.network)

    def network_keys(self, net_config: Mapping[str, Any], image_size: int = 224) -> list[LayerKey]:
        """The layers OFA's ``predict_network_latency_given_config`` queries, in order: as
        MBv3LatencyTable's walks a MobileNetV3 config, as ProxylessNASLatencyTable's any other."""
        if "final_expand_layer" in net_config:
            return _mobilenetv3_keys(net_config, image_size)
        fsize = (image_size + 1) // 2
        stem = net_config["first_conv"]["out_channels"]
        keys = [_proxyless_key("Conv", [image_size, image_size, 3], [fsize, fsize, stem])]
        for block in net_config["blocks"]:
            conv = (
                block["mobile_inverted_conv"] if "mobile_inverted_conv" in block else block["conv"]
            )
            if conv is None:
                continue  # a skipped layer: OFA passes over it
            out = int((fsize - 1) / conv["stride"] + 1)
            shapes = ([fsize, fsize, conv["in_channels"]], [out, out, conv["out_channels"]])
            common = {
                "ks": conv["kernel_size"],
                "stride": conv["stride"],
                "id_skip": 0 if block["shortcut"] is None else 1,
            }
            if conv.get("use_se") or conv.get("act_func") == "h_swish":
                mid = conv.get("mid_channels") or round(conv["in_channels"] * conv["expand_ratio"])
                keys.append(
                    _proxyless_key(
                        "expanded_conv",
                        *shapes,
                        mid=mid,
                        se=int(bool(conv.get("use_se"))),
                        h_swish=int(conv.get("act_func") == "h_swish"),
                        **common,
                    )
                )
            else:
                keys.append(
                    _proxyless_key("expanded_conv", *shapes, expand=conv["expand_ratio"], **common)
                )
            fsize = out
        mix = net_config["feature_mix_layer"]
        keys.append(
            _proxyless_key(
                "Conv_1", [fsize, fsize, mix["in_channels"]], [fsize, fsize, mix["out_channels"]]
            )
        )
        classifier = net_config["classifier"]
        keys.append(
            _proxyless_key(
                "Logits", [fsize, fsize, classifier["in_features"]], [classifier["out_features"]]
            )
        )
        return keys

    # -- fetching and caching -----------------------------------------------------------------

    def prefetch(self, keys: Iterable[LayerKey]) -> None:
        """Fetch the values of ``keys`` not cached yet, in as few requests as possible."""
        missing = list(dict.fromkeys(k for k in keys if k.op is not Op.SKIP and k not in self._ms))
        for start in range(0, len(missing), _FETCH_BATCH):
            self._fetch(missing[start : start + _FETCH_BATCH])

    def refresh(self) -> None:
        """Forget every cached value, so the next answers come from the current predictor."""
        self._ms.clear()
        self._calibration = None
        self.estimated_layers.clear()
        self.predictor_version = None

    def _values(self, keys: list[LayerKey]) -> list[float]:
        self.prefetch(keys)
        return [0.0 if k.op is Op.SKIP else self._ms[k] for k in keys]

    def _fetch(self, keys: list[LayerKey]) -> None:
        answer = self.client.predict_layers(self.device_id, [[str(k)] for k in keys])
        if self.predictor_version not in (None, answer.predictor_version):
            # Mixing two versions in one sum would be wrong: start over on the new one.
            warnings.warn(
                f"device {self.device_id}'s predictor changed from v{self.predictor_version} "
                f"to v{answer.predictor_version}; cached latencies dropped and refetched",
                PredictorChangedWarning,
                stacklevel=2,
            )
            wanted = [*self._ms, *keys]
            self.refresh()
            self.prefetch(wanted)
            return
        self.predictor_version = answer.predictor_version
        for key, ms in zip(keys, answer.latency_ms, strict=True):
            self._ms[key] = ms
        for estimate in answer.estimated_layers:
            if estimate.layer_key in self.estimated_layers:
                continue
            self.estimated_layers.add(estimate.layer_key)
            warnings.warn(
                f"{estimate.layer_key} was never measured on device {self.device_id}; "
                f"{estimate.ms:.4g} ms is predictor v{answer.predictor_version}'s layer-model "
                "estimate",
                EstimatedLatencyWarning,
                stacklevel=2,
            )

    def _space_calibration(
        self, keys: list[LayerKey], in_space: bool = False
    ) -> tuple[TableCalibration, int]:
        """The space's a·Σ+b and the predictor version it belongs to."""
        space = self.space
        if space is None:  # __init__ refuses calibrated=True without a space
            raise ValueError("calibrated=True needs a space")
        if not in_space and not _in_space(space, keys):
            raise ValueError(
                f"this network is not one of {space.name}: its a·Σ+b does not apply; "
                "use calibrated=False for other networks"
            )
        if self._calibration is None:
            table = self.client.runtime_table(self.device_id, space.name)
            if not table.calibration.fixed_in_sum:
                raise ValueError(
                    f"predictor v{table.predictor_version} holds {space.name} as an imported "
                    "per-position table whose b stands for the fixed parts; use "
                    "calibrated=False"
                )
            self._calibration = (table.calibration, table.predictor_version)
        return self._calibration


def _shape(shape: Sequence[int] | str) -> str:
    return shape if isinstance(shape, str) else "x".join(str(v) for v in shape)


def _in_space(space: SearchSpace, keys: Sequence[LayerKey]) -> bool:
    """Whether ``keys`` (skips left out, as OFA leaves them out) is a network of ``space``."""
    front, back = len(space.prefix), len(keys) - len(space.suffix)
    if back < front or tuple(keys[:front]) != space.prefix or tuple(keys[back:]) != space.suffix:
        return False
    middle = list(keys[front:back])
    for slot in space.layers:
        # A layer that may be skipped has the shapes of the one before it, so taking each
        # key at the first slot that offers it finds a decoding whenever there is one.
        if middle and middle[0] in slot.candidate_keys():
            middle.pop(0)
        elif not slot.skippable:
            return False
    return not middle


def _parsed(name: str, network: OfaNetwork) -> LayerKey:
    try:
        return parse_ofa_name(name, network=network)
    except OfaKeyError as error:
        raise ValueError(f"hwlat cannot answer {name!r}: {error}") from None


def _proxyless_key(*args: Any, **kwargs: Any) -> LayerKey:
    return _parsed(HwlatLatencyTable.ofa_key(*args, **kwargs), OfaNetwork.PROXYLESS)


def _mobilenetv3_key(*args: Any, **kwargs: Any) -> LayerKey:
    return _parsed(HwlatLatencyTable.ofa_key(*args, **kwargs), OfaNetwork.MOBILENETV3)


def _mobilenetv3_keys(net_config: Mapping[str, Any], image_size: int) -> list[LayerKey]:
    """MBv3LatencyTable.predict_network_latency_given_config's queries, as layer keys
    (mit-han-lab/once-for-all at f03b2673, ofa/nas/efficiency_predictor/latency_lookup_table.py):
    the first conv, every block with a conv (its input size carried from the one before), the
    final expand, the global pooling of its output, the feature mix and the classifier, both
    on the pooled 1x1 map."""
    fsize = (image_size + 1) // 2
    stem = net_config["first_conv"]["out_channels"]
    keys = [_mobilenetv3_key("Conv", [image_size, image_size, 3], [fsize, fsize, stem])]
    for block in net_config["blocks"]:
        conv = block["mobile_inverted_conv"] if "mobile_inverted_conv" in block else block["conv"]
        if conv is None:
            continue
        out = int((fsize - 1) / conv["stride"] + 1)
        # OFA fills in a missing mid_channels (the first block's) as round(in * expand_ratio).
        mid = conv.get("mid_channels")
        if mid is None:
            mid = round(conv["in_channels"] * conv["expand_ratio"])
        keys.append(
            _mobilenetv3_key(
                "expanded_conv",
                [fsize, fsize, conv["in_channels"]],
                [out, out, conv["out_channels"]],
                mid=mid,
                ks=conv["kernel_size"],
                stride=conv["stride"],
                id_skip=0 if block["shortcut"] is None else 1,
                se=1 if conv.get("use_se") else 0,
                h_swish=1 if conv.get("act_func") == "h_swish" else 0,
            )
        )
        fsize = out
    expand = net_config["final_expand_layer"]
    width = expand["out_channels"]
    keys.append(
        _mobilenetv3_key("Conv_1", [fsize, fsize, expand["in_channels"]], [fsize, fsize, width])
    )
    keys.append(_mobilenetv3_key("AvgPool2D", [fsize, fsize, width], [1, 1, width]))
    mix = net_config["feature_mix_layer"]
    keys.append(_mobilenetv3_key("Conv_2", [1, 1, mix["in_channels"]], [1, 1, mix["out_channels"]]))
    classifier = net_config["classifier"]
    keys.append(
        _mobilenetv3_key("Logits", [1, 1, classifier["in_features"]], [classifier["out_features"]])
    )
    return keys
