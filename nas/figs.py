"""FiGS to a target: gate every channel, price the live ones on the device, decode, land.

Loss ``CE + lambda * log C(n)``, ``n`` the expected live channels of every gate
(:mod:`nas.gates`) and ``C`` a :class:`~nas.channel_cost.ChannelCostModule`: the device's
latency (ms) or, for the FLOPs twin, MorphNet's FLOP count (MFLOPs). During the warm-up epochs
only the weights train; afterwards the gates train too and the
:class:`~nas.controller.LambdaController` steers lambda after every step toward the target,
on the cost of the channels the gates hold (positive logits), as ``hwlat search spnas`` does.

The gates' values are decoded to the nearest architecture of the space
(``ChannelCostModule.nearest``), then *landed*: single-decision moves to a neighbouring choice,
the least regretted first (how much further the choice is from what the gates held, per unit of
cost it moves), until the cost is within the tolerance of the target. At an architecture the
latency cost is the predictor's, so the landing is judged on what ``/v1/predict`` answers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from models import SearchSpace
from models.errors import UserInputError
from nas.channel_cost import ChannelCostModule
from nas.controller import LambdaController
from nas.digits import CLASSES, check_schedule, load_digits
from nas.evaluation import path_accuracy
from nas.gates import GatedSupernet
from predictor.channel_cost import ChannelCost

MAX_MOVES_PER_DECISION = 3


@dataclass(frozen=True)
class FigsConfig:
    target: float  # in the cost's unit: ms, or MFLOPs for the FLOPs twin
    epochs: int = 10
    warmup_epochs: int = 2
    batch_size: int = 64
    resolution: int = 32
    weight_lr: float = 3e-3
    temperature: float = 0.5
    # Larger than Single-Path NAS's (0.01 threshold lr; lambda step 0.05, P 1, max 10): the
    # cost's gradient on one gate is its layer's share spread over hundreds of channels, times
    # the logistic slope at the initial logit (0.07 at 2.5), so lambda must grow tens of times
    # higher, and the gates move farther, to turn channels off within a few epochs.
    gate_lr: float = 0.2
    lambda_step: float = 1.0
    lambda_proportional: float = 10.0
    lambda_max: float = 1000.0
    # Landing band around the target (0.01: +-1%); None decodes the gates and stops. The
    # predictor's own error and the device's noise come on top of it, measured.
    tolerance: float | None = 0.01
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        check_schedule(self.epochs, self.warmup_epochs, self.batch_size, "gates")
        if not self.temperature > 0:
            raise UserInputError(f"--temperature {self.temperature} must be positive")


@dataclass(frozen=True)
class FigsEpoch:
    epoch: int
    lambda_value: float
    held_cost: float  # C of the channels the gates hold (positive logits) at the epoch's end
    cross_entropy: float
    train_accuracy: float
    seconds: float


@dataclass(frozen=True)
class Move:
    decision: int
    before: int
    after: int
    delta: float  # cost change, in the cost's unit


@dataclass(frozen=True)
class FigsResult:
    unit: str
    target: float  # in ``unit``
    decoded: tuple[int, ...]  # nearest the gates' values
    decoded_cost: float
    architecture: tuple[int, ...]  # after landing (the decoded one when landing is off)
    cost: float  # C of ``architecture``: at an architecture, the predictor's own value
    moves: tuple[Move, ...]
    within_tolerance: bool | None  # None: landing off
    held_values: tuple[float, ...]  # the gates' values per decision when training ended
    channels: tuple[float, ...]  # ``architecture``'s live channels per decision
    val_accuracy: float  # proxy task, the architecture's top channels, BN recalibrated
    epochs: tuple[FigsEpoch, ...]
    steps: int
    wall_s: float
    lambda_history: tuple[float, ...] = field(repr=False, default=())


Progress = Callable[[int, int, FigsEpoch | None], None]


def cost_range(module: ChannelCostModule) -> tuple[float, float]:
    """The cost of the space's narrowest and widest architecture (every first / last choice
    by value)."""
    return module.of(module.narrowest()), module.of(module.widest())


def require_reachable(module: ChannelCostModule, target: float) -> tuple[float, float]:
    low, high = cost_range(module)
    if not (math.isfinite(target) and low <= target <= high):
        raise UserInputError(
            f"target {target:g} {module.unit} is outside what {module.cost.space} can reach: "
            f"{low:.3f} (narrowest) to {high:.3f} {module.unit} (widest); pick a target in that "
            "range"
        )
    return low, high


def run_figs(
    space: SearchSpace,
    cost: ChannelCost,
    config: FigsConfig,
    progress: Progress | None = None,
) -> FigsResult:
    """Search ``space`` for ``config.target`` under ``cost`` (the service's channel cost of a
    device, or ``predictor.channel_cost.flop_cost`` of it)."""
    if cost.space_sha256 != space.digest:
        raise UserInputError(f"the channel cost is for {cost.space}, not this {space.name}")
    module = ChannelCostModule(cost)
    require_reachable(module, config.target)
    started = time.monotonic()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    digits = load_digits(config.resolution, space.input_channels, config.seed)
    model = GatedSupernet(space, CLASSES)
    weights = torch.optim.Adam(model.weight_parameters(), lr=config.weight_lr)
    gates = torch.optim.Adam(model.gate_parameters(), lr=config.gate_lr)
    controller = LambdaController(
        config.target, config.lambda_step, config.lambda_proportional, config.lambda_max
    )
    steps_per_epoch = math.ceil(len(digits.train_y) / config.batch_size)
    total = steps_per_epoch * config.epochs
    logs: list[FigsEpoch] = []
    step = 0
    for epoch in range(config.epochs):
        epoch_started = time.monotonic()
        searching = epoch >= config.warmup_epochs
        model.train()
        ce_sum, correct, seen = 0.0, 0, 0
        for batch in digits.batches(config.batch_size, generator):
            x, y = digits.train_x[batch], digits.train_y[batch]
            logits = model(x, model.sample(config.temperature, generator))
            ce = F.cross_entropy(logits, y)
            loss = ce
            if searching:
                loss = ce + controller.value * torch.log(module(model.expected_values()))
            weights.zero_grad(set_to_none=True)
            gates.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            weights.step()
            if searching:
                gates.step()
                with torch.no_grad():
                    controller.update(float(module(model.hard_values())))
            ce_sum += float(ce.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            step += 1
            if progress is not None:
                progress(step, total, None)
        with torch.no_grad():
            held = float(module(model.hard_values()))
        log = FigsEpoch(
            epoch=epoch,
            lambda_value=controller.value,
            held_cost=held,
            cross_entropy=ce_sum / seen,
            train_accuracy=correct / seen,
            seconds=time.monotonic() - epoch_started,
        )
        logs.append(log)
        if progress is not None:
            progress(step, total, log)
    held_values = model.hard_values()
    decoded = module.nearest(held_values)
    architecture: tuple[int, ...] = decoded
    moves: tuple[Move, ...] = ()
    inside: bool | None = None
    if config.tolerance is not None:
        architecture, moves, inside = land(
            module, decoded, held_values.tolist(), config.target, config.tolerance
        )
    channels = module.channels_of(architecture)
    return FigsResult(
        unit=module.unit,
        target=config.target,
        decoded=decoded,
        decoded_cost=module.of(decoded),
        architecture=architecture,
        cost=module.of(architecture),
        moves=moves,
        within_tolerance=inside,
        held_values=tuple(held_values.tolist()),
        channels=tuple(channels),
        val_accuracy=path_accuracy(model, digits, model.masks_of(channels)),
        epochs=tuple(logs),
        steps=step,
        wall_s=time.monotonic() - started,
        lambda_history=tuple(controller.history),
    )


def land(
    module: ChannelCostModule,
    architecture: Sequence[int],
    held: Sequence[float],
    target: float,
    tolerance: float,
) -> tuple[tuple[int, ...], tuple[Move, ...], bool]:
    """Move single decisions to a neighbouring choice until the cost is within ``tolerance``
    of ``target``; returns the closest architecture seen if the band cannot be reached.
    ``held`` are the gates' values per decision (``ChannelCostModule`` values)."""
    if tolerance < 0:
        raise UserInputError(f"landing tolerance {tolerance} must be >= 0")
    arch = list(architecture)
    low, high = target * (1 - tolerance), target * (1 + tolerance)
    moves: list[Move] = []
    current = module.of(arch)
    best = (abs(current - target), tuple(arch))
    for _ in range(MAX_MOVES_PER_DECISION * len(arch)):
        if low <= current <= high:
            break
        move = _best_move(module, arch, held, current, target, low, high)
        if move is None:
            break
        moves.append(move)
        arch[move.decision] = move.after
        current += move.delta
        if abs(current - target) < best[0]:
            best = (abs(current - target), tuple(arch))
    final = tuple(arch) if low <= current <= high else best[1]
    reached = module.of(final)
    return final, tuple(moves), low <= reached <= high


def _best_move(
    module: ChannelCostModule,
    arch: list[int],
    held: Sequence[float],
    current: float,
    target: float,
    low: float,
    high: float,
) -> Move | None:
    """The least regretted neighbouring move toward the band; one that lands in it wins."""
    need = target - current
    landing: list[tuple[float, Move]] = []
    toward: list[tuple[float, Move]] = []
    for d, decision in enumerate(module.cost.decisions):
        order = sorted(range(len(decision.values)), key=decision.values.__getitem__)
        at = order.index(arch[d])
        for step in (-1, 1):
            if not 0 <= at + step < len(order):
                continue
            candidate = [*arch]
            candidate[d] = order[at + step]
            delta = module.of(candidate) - current
            if delta == 0 or (delta > 0) != (need > 0):
                continue
            moved, value = decision.values[candidate[d]], decision.values[arch[d]]
            regret = (abs(held[d] - moved) - abs(held[d] - value)) / max(moved, value)
            move = Move(d, arch[d], candidate[d], delta)
            if low <= current + delta <= high:
                landing.append((regret, move))
            elif abs(delta) < 2 * abs(need):  # never swing past the band by more than the gap
                toward.append((regret / abs(delta), move))
    if landing:
        return min(landing, key=lambda pair: pair[0])[1]
    if toward:
        return min(toward, key=lambda pair: pair[0])[1]
    return None


def labels(space: SearchSpace, architecture: Sequence[int]) -> tuple[str, ...]:
    return tuple(d.choices[i] for d, i in zip(space.decisions, architecture, strict=True))
