"""A new device from ten layers and ten networks, each host device left out in turn.

Run: ``python -m scripts.bench_new_device`` (part of ``make bench``, after
``scripts.bench_devices`` has measured ``docs/bench/devices_raw.json``; a minute of fitting, no
measuring). For each device of that file it plays the bring-up the service does for a device it
has never seen, with the same functions (``predictor.layer_model``, ``predictor.sampling``,
``predictor.fitting``), the other devices' layers being what the service already knows:

1. the layer model of the other devices alone chooses the 10 layers to measure first
   (``choose_layers``, as ``POST /v1/devices/{id}/plans`` does) and 10 calibration networks
   spread over the predicted latency range (``spread_networks``);
2. their measured values (from the file: every layer and network in it was measured on the
   device) are revealed, and a predictor is fitted on them with the others as its prior;
3. it predicts the other 200 networks, which were measured end to end.

Beside it, on the same 10 networks: the device fully profiled (every layer), the MACs proxy
(a line from MACs to latency), and the layer model without other devices (the 10 layers
alone). Then the budget curve: accuracy against the number of layers measured, chosen actively
or at random (median of 5 random draws), and the seed's Pixel 1 table as a new device at layer
level (its networks were never measured): 10 of its layers chosen, MAPE on the rest.

Writes ``docs/bench/new_device.json`` and the plot ``docs/bench/budget_curve.png``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from models import DEFAULT_SPACE, LayerKey, Op, SearchSpace, get_space, parse
from predictor.accuracy import hit_rates
from predictor.artifact import LayerEntry
from predictor.compiled import MissingLayers, compile_space
from predictor.fitting import NetworkSample, fit_calibration, fit_predictor
from predictor.layer_model import can_fit, fit_layer_model, uninformed_model
from predictor.metrics import Metric
from predictor.sampling import choose_layers, predicted_sums, spread_networks
from scripts import bench_env

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "docs" / "bench" / "devices_raw.json"
OUT = ROOT / "docs" / "bench" / "new_device.json"
PLOT = ROOT / "docs" / "bench" / "budget_curve.png"
PIXEL1 = ROOT / "tests" / "data" / "spnas_pixel1_runtime_model.json"
BUDGETS = (5, 10, 20, 30, 0)  # 0: every layer of the space
RANDOM_DRAWS = 5


def _network_layers(space: SearchSpace, arch: Sequence[int]) -> list[LayerKey]:
    return [k for k in space.network(arch) if k.op is not Op.SKIP]


def _scored(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    p, m = np.asarray(predicted), np.asarray(measured)
    return hit_rates(np.abs(p - m) / m)


class Device:
    """One device of the raw file: its layers and its measured networks."""

    def __init__(self, raw: Mapping[str, Any], space: SearchSpace) -> None:
        self.label: str = raw["label"]
        self.layers: dict[str, float] = {k: v["median_ms"] for k, v in raw["layers"].items()}
        self.archs = [list(n["architecture"]) for n in raw["networks"]]
        self.network_ms = [float(n["median_ms"]) for n in raw["networks"]]
        self.space = space

    def split(self, model_for_choice: Any, measured: Mapping[str, float], n: int) -> list[int]:
        """Indices of the ``n`` calibration networks, spread over the predicted range."""
        nets = [_network_layers(self.space, a) for a in self.archs]
        sums = predicted_sums(model_for_choice, nets, measured)
        return spread_networks(sums.tolist(), n)

    def evaluate(
        self,
        own: Mapping[str, float],
        calibration: list[int],
        others: Mapping[str, Mapping[str, float]] | None,
    ) -> dict[str, float] | None:
        """Fit on ``own`` layers and the calibration networks; score the rest (None: too few
        layers for a layer model, and no other device to lend a prior)."""
        samples = [NetworkSample(tuple(self.archs[i]), self.network_ms[i]) for i in calibration]
        try:
            artifact = fit_predictor(
                {k: LayerEntry(v) for k, v in own.items()}, {self.space: samples}, others=others
            )
            compiled = compile_space(artifact, self.space, version=0)
        except MissingLayers:
            return None
        rest = [i for i in range(len(self.archs)) if i not in set(calibration)]
        predicted, _ = compiled.predict(np.asarray([self.archs[i] for i in rest]))
        return _scored(predicted.tolist(), [self.network_ms[i] for i in rest])

    def macs_proxy(self, calibration: list[int]) -> dict[str, float]:
        macs = np.asarray(
            [sum(k.macs for k in _network_layers(self.space, a)) for a in self.archs], dtype=float
        )
        line = fit_calibration(macs[calibration], [self.network_ms[i] for i in calibration])
        rest = [i for i in range(len(self.archs)) if i not in set(calibration)]
        predicted = line.a * macs[rest] + line.b
        return _scored(predicted.tolist(), [self.network_ms[i] for i in rest])


def bring_up(
    device: Device,
    others: Mapping[str, Mapping[str, float]],
    n_layers: int,
    n_networks: int,
    choice_networks: list[list[LayerKey]],
) -> dict[str, Any]:
    prior_only = fit_layer_model({}, others)
    picks = choose_layers(prior_only, choice_networks, {}, n_layers)
    own = {p.layer_key: device.layers[p.layer_key] for p in picks}
    informed = fit_layer_model(own, others)
    calibration = device.split(informed, own, n_networks)
    started = time.monotonic()
    few_shot = device.evaluate(own, calibration, others)
    fit_s = time.monotonic() - started
    full = device.evaluate(device.layers, calibration, others)
    alone = device.evaluate(own, calibration, None)
    model = fit_layer_model(own, others)
    alone_model = fit_layer_model(own)
    space_keys = {str(k) for k in _space_layers(device.space)}
    held: dict[str, Any] = {}
    for part, keys in (
        ("same_space", [k for k in device.layers if k not in own and k in space_keys]),
        ("ofa_mbv3_sample", [k for k in device.layers if k not in space_keys]),
    ):
        truth = np.asarray([device.layers[k] for k in keys])
        parsed = [parse(k) for k in keys]
        held[part] = {
            "n": len(keys),
            "with_other_devices": hit_rates(np.abs(model.predict(parsed) - truth) / truth),
            "without_other_devices": hit_rates(np.abs(alone_model.predict(parsed) - truth) / truth),
        }
    return {
        "device": device.label,
        "layers_chosen": [p.layer_key for p in picks],
        "calibration_networks": len(calibration),
        "validation_networks": len(device.archs) - len(calibration),
        "few_shot": few_shot,
        "fully_profiled": full,
        "macs_proxy": device.macs_proxy(calibration),
        "without_other_devices": alone,
        # Every other layer the device measured, as the 10-layer models estimate them (where
        # the prior shows, before any calibration): the space's other layers, and the OFA
        # sample, whose kinds of layer (7x7, h-swish, SE) none of the 10 has.
        "held_out_layers": held,
        "similar_devices": [
            {"device": s.device, "weight": s.weight, "speed_ratio": s.speed_ratio}
            for s in model.similarity
        ],
        "fit_s": fit_s,
    }


def budget_curve(
    device: Device,
    others: Mapping[str, Mapping[str, float]] | None,
    choice_networks: list[list[LayerKey]],
    calibration: list[int],
    seed: int,
) -> dict[str, Any]:
    """Accuracy against layers measured: chosen actively (a round of 5 at a time, refitting in
    between, as ``hwlat profile --step 5`` does) or at random."""
    pool = [str(k) for k in _space_layers(device.space)]
    rows: dict[str, Any] = {}
    for budget in BUDGETS:
        n = len(pool) if budget == 0 else min(budget, len(pool))
        own: dict[str, float] = {}
        while len(own) < n:
            if can_fit(own, others):
                model = fit_layer_model(own, others)
            else:
                # Nothing known here or elsewhere: the first rounds are spread by the
                # uninformed model, as the service's plan does.
                model = uninformed_model(device.space.variants())
            step = min(5, n - len(own))
            picks = choose_layers(model, choice_networks, own, step)
            if not picks:
                break
            own |= {p.layer_key: device.layers[p.layer_key] for p in picks}
        active = device.evaluate(own, calibration, others)
        draws = [
            device.evaluate(
                {k: device.layers[k] for k in random.Random(seed + d).sample(pool, n)},
                calibration,
                others,
            )
            for d in range(RANDOM_DRAWS)
        ]
        scored = [d for d in draws if d is not None]
        rows[str(n)] = {
            "active": active,
            "random_median": {m: float(np.median([d[m] for d in scored])) for m in scored[0]}
            if scored
            else None,
        }
    return rows


def _space_layers(space: SearchSpace) -> list[LayerKey]:
    return list(dict.fromkeys([*space.prefix, *space.variants(), *space.suffix]))


def pixel1_layers(space: SearchSpace) -> dict[str, float]:
    """The seed's Pixel 1 table by layer key (positions sharing a key averaged)."""
    data = json.loads(PIXEL1.read_text())
    values: dict[str, list[float]] = {}
    for position, slot in enumerate(space.layers):
        for c, key in enumerate(slot.candidate_keys()):
            if key.op is Op.SKIP:
                continue
            values.setdefault(str(key), []).append(float(data[str(position + 1)][str(c)]))
    return {k: float(np.mean(v)) for k, v in values.items()}


def pixel1(others: Mapping[str, Mapping[str, float]], choice_networks: Any) -> dict[str, Any]:
    space = get_space(DEFAULT_SPACE)
    table = pixel1_layers(space)
    prior_only = fit_layer_model({}, others)
    # The table covers the searchable positions; the choice is among its keys.
    nets = [[k for k in net if str(k) in table] for net in choice_networks]
    picks = choose_layers(prior_only, nets, {}, 10)
    own = {p.layer_key: table[p.layer_key] for p in picks}
    rest = [k for k in table if k not in own]
    result: dict[str, Any] = {"layers": len(table), "measured": len(own)}
    for name, theirs in (("with_other_devices", others), ("without_other_devices", None)):
        model = fit_layer_model(own, theirs)
        predicted = model.predict([parse(k) for k in rest])
        errors = np.abs(predicted - np.asarray([table[k] for k in rest])) / np.asarray(
            [table[k] for k in rest]
        )
        low, high = model.interval([parse(k) for k in rest])
        truth = np.asarray([table[k] for k in rest])
        result[name] = {
            **hit_rates(errors),
            "held_out": len(rest),
            "interval90_holds_pct": float(100 * np.mean((truth >= low) & (truth <= high))),
        }
    return result


def held_out_layers(layers: Mapping[str, float], seed: int) -> dict[str, Any]:
    """10-fold: each tenth of the device's layers predicted by a model fitted on the rest."""
    keys = list(layers)
    order = np.random.default_rng(seed).permutation(len(keys))
    errors: dict[str, float] = {}
    inside: list[bool] = []
    for fold in np.array_split(order, 10):
        test = [keys[i] for i in fold]
        model = fit_layer_model({k: layers[k] for k in keys if k not in set(test)}, None, seed)
        parsed = [parse(k) for k in test]
        predicted = model.predict(parsed)
        low, high = model.interval(parsed)
        for k, p, lo, hi in zip(test, predicted, low, high, strict=True):
            errors[k] = abs(p - layers[k]) / layers[k]
            inside.append(bool(lo <= layers[k] <= hi))
    seed_keys = {str(k) for k in _space_layers(get_space(DEFAULT_SPACE))}
    out: dict[str, Any] = {"interval90_holds_pct": 100 * float(np.mean(inside))}
    for name, subset in (
        ("seed_space", [k for k in keys if k in seed_keys]),
        ("ofa_mbv3_sample", [k for k in keys if k not in seed_keys]),
        ("all", keys),
    ):
        e = np.sort([errors[k] for k in subset])
        out[name] = {
            "n": len(e),
            **hit_rates(e),
            "worst_decile_mape": float(100 * e[-max(1, e.size // 10) :].mean()),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", type=Path, default=RAW)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--networks", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args()
    raw = json.loads(args.raw.read_text())
    space = get_space(raw["space"])
    devices = [Device(d, space) for d in raw["devices"]]
    choice_networks = [_network_layers(space, a) for a in space.sample(200, args.seed + 7)]
    started = time.monotonic()
    rows, curves, held = [], {}, {}
    for device in devices:
        others = {d.label: d.layers for d in devices if d is not device}
        print(f"{device.label}: bring-up from {args.layers} layers + {args.networks} networks")
        row = bring_up(device, others, args.layers, args.networks, choice_networks)
        rows.append(row)
        calibration = device.split(fit_layer_model(device.layers), device.layers, args.networks)
        curves[device.label] = {
            "with_other_devices": budget_curve(
                device, others, choice_networks, calibration, args.seed
            ),
            "alone": budget_curve(device, None, choice_networks, calibration, args.seed),
        }
        held[device.label] = held_out_layers(device.layers, args.seed)
    everyone = {d.label: d.layers for d in devices}
    result = {
        "benchmark": "new_device",
        "command": bench_env.command("scripts.bench_new_device"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": bench_env.environment(("numpy", "scipy", "scikit-learn")),
        "raw": {"file": str(args.raw.relative_to(ROOT)), "date": raw["date"]},
        "space": space.name,
        "settings": {"layers": args.layers, "networks": args.networks, "seed": args.seed},
        "leave_one_device_out": rows,
        "budget_curve": curves,
        "held_out_layers": held,
        "pixel1": pixel1(everyone, choice_networks),
        "wall_s": time.monotonic() - started,
    }
    bench_env.write_report(args.out, result)
    plot_budget(args.plot, curves)
    from scripts.bench_report import new_device_section

    print("\n".join(new_device_section(result)))
    print(f"\nwrote {args.out} and {args.plot}")


def plot_budget(path: Path, curves: Mapping[str, Any]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4), dpi=110)
    FigureCanvasAgg(figure)
    for i, mode in enumerate(("alone", "with_other_devices")):
        axes = figure.add_subplot(1, 2, i + 1)
        for j, (label, modes) in enumerate(curves.items()):
            rows = modes[mode]
            sizes = [int(n) for n in rows]
            colour = f"C{j}"
            for kind, style in (("active", "o-"), ("random_median", "x--")):
                points = [
                    (n, rows[str(n)][kind][Metric.WITHIN_5PCT] * 100)
                    for n in sizes
                    if rows[str(n)][kind] is not None
                ]
                axes.plot(
                    [n for n, _ in points],
                    [v for _, v in points],
                    style,
                    color=colour,
                    alpha=1.0 if kind == "active" else 0.6,
                    label=f"{label} {kind.split('_')[0]}",
                )
        axes.set_xlabel("layers measured on the device")
        axes.set_ylabel("networks within ±5% (%)")
        axes.set_title(
            "device alone" if mode == "alone" else "other devices known (prior)", fontsize=10
        )
        axes.grid(alpha=0.3)
    figure.axes[-1].legend(fontsize=6, ncol=2, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


if __name__ == "__main__":
    main()
