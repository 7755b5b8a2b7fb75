"""Framework-neutral definition of the exported blocks: seeded weights, inputs, chaining.

The Keras and torch builders both load their parameters from :func:`block_params`, so a layer
key always means the same numbers in every format, whichever process or machine builds it.
Arrays are in torch layout (conv ``OIHW``, FC ``(out, in)``); the Keras builder transposes.

Batch-norm statistics are random rather than the identity so that an exported block computes
something non-trivial: a folded BN that is a no-op would hide a wrong fold or a lost layer.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from models.errors import UserInputError
from models.layer_key import CLASSIFIERS, LayerKey, Op

# Bump when the meaning of a key's weights changes; the export cache hashes it in.
# 2: no longer salted with the block's position in a network.
WEIGHTS_VERSION: Final = 2
# Keras' default; torch's BatchNorm2d is built with the same value so both compute the same.
BN_EPSILON: Final = 1e-3

Params = dict[str, npt.NDArray[np.float32]]


class NothingToExport(UserInputError):
    """A skip key: an identity has no operators, so there is no model to build or export."""

    def __init__(self, key: LayerKey) -> None:
        super().__init__(
            f"{key} is a skip (identity) layer: it has no operators, so there is nothing to "
            "build or export; its latency is zero by definition"
        )
        self.key = key


def rng_for(text: str) -> np.random.Generator:
    """A generator seeded from ``text``, stable across processes (unlike ``hash()``)."""
    digest = hashlib.sha256(f"hwlat-weights-v{WEIGHTS_VERSION}:{text}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def block_params(key: LayerKey) -> Params:
    """Every parameter and BN statistic of the block ``key``, keyed by its torch name.

    The same key has the same weights wherever it stands, alone or anywhere in a network: a
    network's file is then its layers' files joined (models.export.assemble), and latency does
    not depend on the values of the weights, only on their shapes. One consequence: a key that
    occurs twice in a network holds equal weights, which the converter (and the joiner) store
    once, where a trained network would hold two copies.
    """
    if key.op is Op.SKIP:
        raise NothingToExport(key)
    rng = rng_for(str(key))
    params: Params = {}
    if key.op is Op.CONV:
        _conv(params, rng, "conv", key.cout, key.cin, key.kernel)
        _bn(params, rng, "bn", key.cout)
    elif key.op is Op.HEAD:
        _conv(params, rng, "conv", key.cout, key.cin, 1)
        _bn(params, rng, "bn", key.cout)
        _fc(params, rng, key.cout, key.classes)
    elif key.op is Op.LOGITS:
        _fc(params, rng, key.cin, key.classes)
    elif key.op is Op.POOL:
        pass  # a global average pool has no weights
    else:
        mid = key.mid
        if key.expansion > 1:
            _conv(params, rng, "expand.conv", mid, key.cin, 1)
            _bn(params, rng, "expand.bn", mid)
        _conv(params, rng, "depthwise.conv", mid, 1, key.kernel)
        _bn(params, rng, "depthwise.bn", mid)
        if key.se:
            # The same parameters for either width rule (``se``, ``sem``): only se_channels
            # differs, so an existing ``se`` key draws exactly the numbers it always did.
            se = key.se_channels
            params["se.reduce.weight"] = _normal(rng, (se, mid, 1, 1), (2.0 / mid) ** 0.5)
            params["se.reduce.bias"] = _normal(rng, (se,), 0.1)
            params["se.expand.weight"] = _normal(rng, (mid, se, 1, 1), (1.0 / se) ** 0.5)
            params["se.expand.bias"] = _normal(rng, (mid,), 0.1)
        _conv(params, rng, "project.conv", key.cout, mid, 1)
        _bn(params, rng, "project.bn", key.cout)
    return params


def network_blocks(keys: Sequence[LayerKey]) -> tuple[LayerKey, ...]:
    """The keys that carry operators, in order; raise if none is left or they do not chain."""
    blocks = tuple(k for k in keys if k.op is not Op.SKIP)
    if not blocks:
        raise ValueError("the network has no layers besides skips; nothing to build")
    for before, after in itertools.pairwise(blocks):
        if before.op in CLASSIFIERS or (after.hw, after.cin) != (before.hw_out, before.cout):
            raise ValueError(
                f"layer {after} cannot follow {before}: it takes hw{after.hw}_i{after.cin} "
                f"but gets hw{before.hw_out}_i{before.cout}"
            )
    return blocks


def sample_input(shape: tuple[int, ...], seed: int = 0) -> npt.NDArray[np.float32]:
    """A standard-normal input tensor; the same ``(shape, seed)`` always gives the same array."""
    rng = rng_for(f"input:{','.join(map(str, shape))}:{seed}")
    return rng.standard_normal(shape).astype(np.float32)


def _normal(
    rng: np.random.Generator, shape: tuple[int, ...], std: float
) -> npt.NDArray[np.float32]:
    return (rng.standard_normal(shape) * std).astype(np.float32)


def _conv(
    params: Params, rng: np.random.Generator, name: str, cout: int, cin_per_group: int, k: int
) -> None:
    # He initialisation keeps activations in range through a whole random network.
    fan_in = cin_per_group * k * k
    params[f"{name}.weight"] = _normal(rng, (cout, cin_per_group, k, k), (2.0 / fan_in) ** 0.5)


def _fc(params: Params, rng: np.random.Generator, features: int, classes: int) -> None:
    params["fc.weight"] = _normal(rng, (classes, features), (1.0 / features) ** 0.5)
    params["fc.bias"] = _normal(rng, (classes,), 0.1)


def _bn(params: Params, rng: np.random.Generator, name: str, channels: int) -> None:
    params[f"{name}.weight"] = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    params[f"{name}.bias"] = _normal(rng, (channels,), 0.1)
    params[f"{name}.running_mean"] = _normal(rng, (channels,), 0.1)
    params[f"{name}.running_var"] = rng.uniform(0.5, 1.5, channels).astype(np.float32)
