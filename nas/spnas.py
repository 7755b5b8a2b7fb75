"""Single-Path NAS to a latency target: train the supernet and its thresholds, then decode.

Loss ``CE + lambda * log R``. During the warm-up epochs only the weights train (lambda = 0, the
thresholds stay at 0 so every part is used); afterwards the thresholds train too and the
:class:`~nas.controller.LambdaController` moves lambda after every step, by dual ascent on
``log R - log target``, with R the latency of the architecture the thresholds hold at that step
(the straight-through indicators are exactly 0/1 in the forward pass, and with the exact runtime
formula R is then the service's own prediction of that architecture).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from latency_api.schemas.predictors import RuntimeTable
from models import SearchSpace
from nas.controller import LambdaController
from nas.digits import CLASSES, check_schedule, load_digits
from nas.evaluation import path_accuracy
from nas.landing import Landing, land
from nas.runtime_term import RuntimeFormula, RuntimeTerm
from nas.supernet import Supernet


@dataclass(frozen=True)
class SpnasConfig:
    target_ms: float
    epochs: int = 8
    warmup_epochs: int = 2
    batch_size: int = 64
    resolution: int = 32
    weight_lr: float = 3e-3
    threshold_lr: float = 1e-2
    lambda_step: float = 0.05
    lambda_proportional: float = 1.0
    lambda_max: float = 10.0
    formula: RuntimeFormula = RuntimeFormula.EXACT
    # Landing band around the target (0.01: +-1%); None decodes the thresholds and stops.
    tolerance: float | None = 0.01
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        check_schedule(self.epochs, self.warmup_epochs, self.batch_size, "thresholds")


@dataclass(frozen=True)
class EpochLog:
    epoch: int
    lambda_value: float
    runtime_ms: float  # R of the architecture held at the end of the epoch
    cross_entropy: float
    train_accuracy: float
    architecture: tuple[int, ...]
    seconds: float


@dataclass(frozen=True)
class SpnasResult:
    decoded: tuple[int, ...]  # what the final thresholds select
    decoded_ms: float  # its latency from the runtime table
    architecture: tuple[int, ...]  # after landing (the decoded one when landing is off)
    labels: tuple[str, ...]
    runtime_ms: float  # R of ``architecture``, from the runtime table
    landing: Landing | None
    val_accuracy: float  # on the proxy task: ``architecture``'s path, BN recalibrated
    epochs: tuple[EpochLog, ...]
    steps: int
    wall_s: float
    lambda_history: tuple[float, ...] = field(repr=False, default=())


Progress = Callable[[int, int, EpochLog | None], None]


def run_spnas(
    space: SearchSpace,
    table: RuntimeTable,
    config: SpnasConfig,
    progress: Progress | None = None,
) -> SpnasResult:
    """Search ``space`` for ``config.target_ms`` on the device whose runtime table is given.

    ``progress(step, total_steps, epoch_log)`` is called after every step (``epoch_log`` at
    the end of an epoch, else None).
    """
    table.check_space(space)
    table.require_reachable(config.target_ms)
    started = time.monotonic()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    digits = load_digits(config.resolution, space.input_channels, config.seed)
    model = Supernet(space, CLASSES)
    term = RuntimeTerm(table, model.grids, config.formula)
    weights = torch.optim.Adam(model.weight_parameters(), lr=config.weight_lr)
    thresholds = torch.optim.Adam(model.threshold_parameters(), lr=config.threshold_lr)
    search_steps = math.ceil(len(digits.train_y) / config.batch_size) * (
        config.epochs - config.warmup_epochs
    )
    # Cosine decay to 0 lets the thresholds settle where the controller has balanced them.
    annealing = torch.optim.lr_scheduler.CosineAnnealingLR(thresholds, T_max=search_steps)
    controller = LambdaController(
        config.target_ms, config.lambda_step, config.lambda_proportional, config.lambda_max
    )
    steps_per_epoch = math.ceil(len(digits.train_y) / config.batch_size)
    total = steps_per_epoch * config.epochs
    logs: list[EpochLog] = []
    step = 0
    for epoch in range(config.epochs):
        epoch_started = time.monotonic()
        searching = epoch >= config.warmup_epochs
        model.train()
        ce_sum, correct, seen = 0.0, 0, 0
        for batch in digits.batches(config.batch_size, generator):
            x, y = digits.train_x[batch], digits.train_y[batch]
            d = model.indicators()
            logits = model(x, d)
            ce = F.cross_entropy(logits, y)
            runtime = term(d)
            loss = ce + controller.value * torch.log(runtime) if searching else ce
            weights.zero_grad(set_to_none=True)
            thresholds.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            weights.step()
            if searching:
                thresholds.step()
                annealing.step()
            if searching:
                controller.update(float(runtime.detach()))
            ce_sum += float(ce.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            step += 1
            if progress is not None:
                progress(step, total, None)
        held = model.decode()
        log = EpochLog(
            epoch=epoch,
            lambda_value=controller.value,
            runtime_ms=table.latency_ms(held),
            cross_entropy=ce_sum / seen,
            train_accuracy=correct / seen,
            architecture=held,
            seconds=time.monotonic() - epoch_started,
        )
        logs.append(log)
        if progress is not None:
            progress(step, total, log)
    decoded = model.decode()
    landing = None
    architecture = decoded
    if config.tolerance is not None:
        landing = land(
            table,
            model.grids,
            decoded,
            model.hard_indicators(),
            model.confidence(),
            config.target_ms,
            config.tolerance,
        )
        architecture = landing.architecture
    d_final = model.fixed_indicators(architecture)
    return SpnasResult(
        decoded=decoded,
        decoded_ms=table.latency_ms(decoded),
        architecture=architecture,
        labels=labels(space, architecture),
        runtime_ms=float(term(d_final.double())),
        landing=landing,
        val_accuracy=path_accuracy(model, digits, d_final),
        epochs=tuple(logs),
        steps=step,
        wall_s=time.monotonic() - started,
        lambda_history=tuple(controller.history),
    )


def labels(space: SearchSpace, architecture: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(
        slot.candidates[i].label for slot, i in zip(space.layers, architecture, strict=True)
    )
