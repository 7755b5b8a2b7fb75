"""A weight-sharing supernet trained single-path one-shot style, to score many architectures.

Training samples one architecture per batch, uniformly per layer (SPOS, Guo et al. 2020), and
trains only its path; afterwards every architecture inherits its weights from the supernet and
is scored by :func:`nas.evaluation.path_accuracy` without training of its own. The scores rank
architectures on the proxy task (digits); they are not ImageNet accuracies.

The trained weights can be saved and loaded, so that several processes of one Pareto study
score with the same supernet; :func:`weights_sha256` names the weights for that check.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from models import SearchSpace
from models.errors import UserInputError
from nas.digits import CLASSES, Digits
from nas.elastic_supernet import ElasticSupernet
from nas.supernet import Supernet

# A space of fixed shapes shares weights through Single-Path superkernels (what spnas searches
# too); an elastic one OFA's way (nas.elastic_supernet). Both run an architecture given
# ``model(x, model.path(architecture))``.
AnySupernet = Supernet | ElasticSupernet


def build_supernet(space: SearchSpace, classes: int) -> AnySupernet:
    return Supernet(space, classes) if space.fixed_shape else ElasticSupernet(space, classes)


FILE_FORMAT = 1


@dataclass(frozen=True)
class OneShotConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UserInputError(f"supernet epochs {self.epochs} must be at least 1")
        if self.batch_size < 2:
            raise UserInputError("the supernet's batch size must be at least 2 (batch norm)")


@dataclass(frozen=True)
class OneShotSupernet:
    model: AnySupernet
    resolution: int
    config: OneShotConfig
    sha256: str


def train_one_shot(
    space: SearchSpace,
    digits: Digits,
    config: OneShotConfig,
    progress: Callable[[int, int], None] | None = None,
) -> OneShotSupernet:
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = build_supernet(space, CLASSES)
    optimiser = torch.optim.Adam(model.weight_parameters(), lr=config.lr)
    counts = torch.tensor(space.candidate_counts)
    total = math.ceil(len(digits.train_y) / config.batch_size) * config.epochs
    step = 0
    model.train()
    for _ in range(config.epochs):
        for batch in digits.batches(config.batch_size, generator):
            draw = torch.rand(len(counts), generator=generator)
            architecture = (draw * counts).long().clamp(max=counts - 1).tolist()
            d = model.path(architecture)
            loss = F.cross_entropy(model(digits.train_x[batch], d), digits.train_y[batch])
            optimiser.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            optimiser.step()
            step += 1
            if progress is not None:
                progress(step, total)
    model.eval()
    return OneShotSupernet(model, digits.resolution, config, weights_sha256(model))


def weights_sha256(model: AnySupernet) -> str:
    """A digest of every parameter and buffer, in name order: equal digests, equal scores."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save(supernet: OneShotSupernet, path: Path) -> None:
    payload: dict[str, Any] = {
        "format": FILE_FORMAT,
        "space": supernet.model.space.name,
        "resolution": supernet.resolution,
        "config": {
            "epochs": supernet.config.epochs,
            "batch_size": supernet.config.batch_size,
            "lr": supernet.config.lr,
            "seed": supernet.config.seed,
        },
        "sha256": supernet.sha256,
        "state": supernet.model.state_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    partial.replace(path)  # other processes never see half a file


def load(space: SearchSpace, path: Path) -> OneShotSupernet:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, ValueError, EOFError) as error:
        raise UserInputError(f"{path} is not a supernet file of hwlat ({error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise UserInputError(f"{path} is not a supernet file of format {FILE_FORMAT}")
    if payload["space"] != space.name:
        raise UserInputError(
            f"{path} holds a supernet of {payload['space']}, not {space.name}; "
            "pass another --supernet file or let the search train one"
        )
    model = build_supernet(space, CLASSES)
    model.load_state_dict(payload["state"])
    model.eval()
    sha = weights_sha256(model)
    if sha != payload["sha256"]:
        raise UserInputError(
            f"{path}: the weights do not match their recorded digest; file damaged"
        )
    return OneShotSupernet(
        model, int(payload["resolution"]), OneShotConfig(**payload["config"]), sha
    )
