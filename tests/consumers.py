"""How existing search code reads latency tables, rewritten here so tests can walk it.

Nothing is copied: each function follows the lookup path of the code it names, in our own
words, so a table hwlat writes is read the way its consumer reads it.

- The seed, enyac-group/single-path-nas at 21c1f3e9c790e591749c0fb861bff3737b6d5fc7,
  ``nas-search/singlepath_supernet.py`` (``SinglePathSuperNet._build``) with the block list of
  ``nas-search/supernet_macro.py``: ``runtime_lut[str(block)][str(i)]`` for every index ``i``
  the block's entry has, over 22 blocks; skip is not in the table (the seed appends 0.7 ms).
- OFA, mit-han-lab/once-for-all at f03b2673db313b9167e2a1c2b7a5cad540cc1313,
  ``ofa/nas/efficiency_predictor/latency_lookup_table.py``: ``ProxylessNASLatencyTable.query``
  and ``predict_network_latency_given_config``, and ``MBv3LatencyTable.query`` and
  ``predict_network_latency_given_config``.
  OFA itself is not installed for the tests: its ``ofa.utils`` imports torchvision, and the
  torchvision wheel for torch 2.13 fails to load against the CPU build of torch used here
  ("operator torchvision::nms does not exist"); its loader also calls ``yaml.load`` without a
  Loader, which PyYAML 6 refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from models import LayerKey, Op, SearchSpace

# (repeats, has a skip candidate) per entry of the seed's blocks_args: the fixed first block,
# five stages of four, the fixed last block.
SEED_BLOCK_ARGS = [(1, False), (4, True), (4, True), (4, True), (4, True), (4, True), (1, False)]
SEED_SKIP_MS = 0.7


def seed_block_runtimes(runtime_lut: dict[str, dict[str, float]]) -> list[list[float]]:
    """Per block, the runtimes the seed's supernet hands to its MBConvBlock."""
    blocks: list[list[float]] = []
    for repeats, skippable in SEED_BLOCK_ARGS:
        for repeat in range(repeats):
            entry = runtime_lut[str(len(blocks))]
            runtimes = [entry[str(i)] for i in range(len(entry.keys()))]
            if skippable and repeat > 0:
                runtimes.append(SEED_SKIP_MS)
            blocks.append(runtimes)
    return blocks


def _shape(shape: Sequence[int] | str) -> str:
    return shape if isinstance(shape, str) else "x".join(str(v) for v in shape)


def ofa_query_key(
    l_type: str,
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    expand: int | None = None,
    ks: int | None = None,
    stride: int | None = None,
    id_skip: int | None = None,
) -> str:
    """The key ProxylessNASLatencyTable.query looks up."""
    parts = [l_type, f"input:{_shape(input_shape)}", f"output:{_shape(output_shape)}"]
    if l_type == "expanded_conv":
        if None in (expand, ks, stride, id_skip):
            raise AssertionError("OFA asserts that a block query has all four parameters")
        parts += [f"expand:{expand}", f"kernel:{ks}", f"stride:{stride}", f"idskip:{id_skip}"]
    return "-".join(parts)


def mbv3_query_key(
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    *,
    mid: int,
    ks: int,
    stride: int,
    id_skip: int,
    se: int,
    h_swish: int,
) -> str:
    """The block key MBv3LatencyTable.query looks up (``expand`` is the expanded channels)."""
    base = ofa_query_key("expanded_conv", input_shape, output_shape, mid, ks, stride, id_skip)
    return f"{base}-se:{se}-hs:{h_swish}"


class ProxylessReference:
    """ProxylessNASLatencyTable's lookups over a loaded table (``lut[key]["mean"]``)."""

    def __init__(self, lut: dict[str, dict[str, Any]]) -> None:
        self.lut = lut
        self.queried: list[str] = []

    def query(
        self, l_type: str, input_shape: Sequence[int], output_shape: Sequence[int], **kw: Any
    ) -> float:
        key = ofa_query_key(l_type, input_shape, output_shape, **kw)
        self.queried.append(key)
        mean: float = self.lut[key]["mean"]
        return mean

    def predict_network_latency_given_config(
        self, net_config: dict[str, Any], image_size: int = 224
    ) -> float:
        return walk_ofa_config(self.query, net_config, image_size)


def walk_ofa_config(
    query: Callable[..., float], net_config: dict[str, Any], image_size: int = 224
) -> float:
    """ProxylessNASLatencyTable.predict_network_latency_given_config's walk over ``query``."""
    total = 0.0
    fsize = (image_size + 1) // 2
    first = net_config["first_conv"]["out_channels"]
    total += query("Conv", [image_size, image_size, 3], [fsize, fsize, first])
    for block in net_config["blocks"]:
        conv = block["mobile_inverted_conv"] if "mobile_inverted_conv" in block else block["conv"]
        if conv is None:
            continue
        out = int((fsize - 1) / conv["stride"] + 1)
        total += query(
            "expanded_conv",
            [fsize, fsize, conv["in_channels"]],
            [out, out, conv["out_channels"]],
            expand=conv["expand_ratio"],
            ks=conv["kernel_size"],
            stride=conv["stride"],
            id_skip=0 if block["shortcut"] is None else 1,
        )
        fsize = out
    mix = net_config["feature_mix_layer"]
    total += query(
        "Conv_1", [fsize, fsize, mix["in_channels"]], [fsize, fsize, mix["out_channels"]]
    )
    classifier = net_config["classifier"]
    total += query(
        "Logits", [fsize, fsize, classifier["in_features"]], [classifier["out_features"]]
    )
    return total


class Mbv3Reference:
    """MBv3LatencyTable's lookups over a loaded table (``lut[key]["mean"]``)."""

    def __init__(self, lut: dict[str, dict[str, Any]]) -> None:
        self.lut = lut
        self.queried: list[str] = []

    def query(
        self,
        l_type: str,
        input_shape: Sequence[int],
        output_shape: Sequence[int],
        mid: int | None = None,
        ks: int | None = None,
        stride: int | None = None,
        id_skip: int | None = None,
        se: int | None = None,
        h_swish: int | None = None,
    ) -> float:
        if l_type == "expanded_conv":
            if None in (mid, ks, stride, id_skip, se, h_swish):
                raise AssertionError("OFA asserts that a block query has all six parameters")
            key = (
                f"{ofa_query_key(l_type, input_shape, output_shape, mid, ks, stride, id_skip)}"
                f"-se:{se}-hs:{h_swish}"
            )
        else:
            key = ofa_query_key(l_type, input_shape, output_shape)
        self.queried.append(key)
        mean: float = self.lut[key]["mean"]
        return mean

    def predict_network_latency_given_config(
        self, net_config: dict[str, Any], image_size: int = 224
    ) -> float:
        """The walk: first conv; each block with a conv, its input size carried along (a
        missing ``mid_channels`` filled in as round(in * expand_ratio), as OFA writes it back
        into the config); final expand; pooling; feature mix and classifier on the 1x1 map."""
        total = 0.0
        fsize = (image_size + 1) // 2
        first = net_config["first_conv"]["out_channels"]
        total += self.query("Conv", [image_size, image_size, 3], [fsize, fsize, first])
        for block in net_config["blocks"]:
            conv = (
                block["mobile_inverted_conv"] if "mobile_inverted_conv" in block else block["conv"]
            )
            if conv is None:
                continue
            out = int((fsize - 1) / conv["stride"] + 1)
            if conv["mid_channels"] is None:
                conv["mid_channels"] = round(conv["in_channels"] * conv["expand_ratio"])
            total += self.query(
                "expanded_conv",
                [fsize, fsize, conv["in_channels"]],
                [out, out, conv["out_channels"]],
                mid=conv["mid_channels"],
                ks=conv["kernel_size"],
                stride=conv["stride"],
                id_skip=0 if block["shortcut"] is None else 1,
                se=1 if conv["use_se"] else 0,
                h_swish=1 if conv["act_func"] == "h_swish" else 0,
            )
            fsize = out
        expand = net_config["final_expand_layer"]
        total += self.query(
            "Conv_1",
            [fsize, fsize, expand["in_channels"]],
            [fsize, fsize, expand["out_channels"]],
        )
        total += self.query(
            "AvgPool2D",
            [fsize, fsize, expand["out_channels"]],
            [1, 1, expand["out_channels"]],
        )
        mix = net_config["feature_mix_layer"]
        total += self.query("Conv_2", [1, 1, mix["in_channels"]], [1, 1, mix["out_channels"]])
        classifier = net_config["classifier"]
        total += self.query(
            "Logits", [1, 1, classifier["in_features"]], [classifier["out_features"]]
        )
        return total


def ofa_net_config(space: SearchSpace, arch: Sequence[int]) -> dict[str, Any]:
    """The network ``arch`` of a ProxylessNAS-shaped space as OFA's ``ProxylessNASNets.config``.

    A skipped layer is a block without a conv (OFA's walk passes over it), as a depth-elastic
    OFA network drops it.
    """
    network = space.network(arch)
    stem, *blocks, mix, logits = network
    if stem.op is not Op.CONV or mix.op is not Op.CONV or logits.op is not Op.LOGITS:
        raise ValueError(f"{space.name} is not Conv, blocks, Conv_1, Logits as ProxylessNAS is")
    return {
        "name": "ProxylessNASNets",
        "first_conv": {"name": "ConvLayer", "in_channels": stem.cin, "out_channels": stem.cout},
        "blocks": [_block(key) for key in blocks],
        "feature_mix_layer": {
            "name": "ConvLayer",
            "in_channels": mix.cin,
            "out_channels": mix.cout,
        },
        "classifier": {
            "name": "LinearLayer",
            "in_features": logits.cin,
            "out_features": logits.classes,
        },
    }


def _block(key: LayerKey) -> dict[str, Any]:
    identity = {"name": "IdentityLayer", "in_channels": key.cin, "out_channels": key.cout}
    if key.op is Op.SKIP:
        return {"name": "ResidualBlock", "conv": None, "shortcut": identity}
    return {
        "name": "ResidualBlock",
        "conv": {
            "name": "MBConvLayer",
            "in_channels": key.cin,
            "out_channels": key.cout,
            "kernel_size": key.kernel,
            "stride": key.stride,
            "expand_ratio": key.expansion,
            "mid_channels": None,
            "act_func": "relu6",
            "use_se": key.se,
        },
        "shortcut": identity if key.has_residual else None,
    }
