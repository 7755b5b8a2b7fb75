"""The searches' plots (PNG, Agg): the Pareto front (one panel, or pairwise panels over
several metrics), and FiGS's channels per layer."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nas.front import Scored, pareto_front
from nas.objectives import Limits, Objective


def plot_front(
    path: Path,
    trials: Sequence[Scored],
    *,
    title: str,
    accuracy_label: str,
    latency_label: str,
    baseline: Sequence[Scored] = (),
    baseline_label: str = "random sample",
    measured: Sequence[tuple[float, float]] = (),
    front: Sequence[Scored] | None = None,
) -> None:
    """Write a PNG; ``measured`` are (measured ms, accuracy) points of measured architectures;
    ``front``: the front to draw when it is not all of ``trials``' (limits left some out)."""
    # A Figure with its own Agg canvas: no pyplot, so no global backend state to set or leak.
    figure = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if baseline:
        axes.scatter(
            [p.latency_ms for p in baseline],
            [p.accuracy for p in baseline],
            s=12,
            color="tab:blue",
            alpha=0.5,
            label=baseline_label,
        )
    axes.scatter(
        [p.latency_ms for p in trials],
        [p.accuracy for p in trials],
        s=12,
        color="0.6",
        label=f"trials ({len(trials)})",
    )
    front = pareto_front(trials) if front is None else front
    axes.plot(
        [p.latency_ms for p in front],
        [p.accuracy for p in front],
        "o-",
        color="tab:red",
        markersize=5,
        drawstyle="steps-post",
        label=f"Pareto front ({len(front)})",
    )
    if measured:
        axes.scatter(
            [m for m, _ in measured],
            [a for _, a in measured],
            marker="x",
            color="black",
            label="front, measured on the device",
        )
    axes.set_xlabel(latency_label)
    axes.set_ylabel(accuracy_label)
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")


def plot_channels(
    path: Path,
    names: Sequence[str],
    widest: Sequence[float],
    searches: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
) -> None:
    """Channels per decision (a stage's width, a layer's expanded channels) of each search's
    architecture, beside the widest the space offers; two panels, widths and expansions."""
    figure = Figure(figsize=(10, 6), dpi=110)
    FigureCanvasAgg(figure)
    panels = (
        ("stage output channels", [i for i, n in enumerate(names) if n.endswith(".width")]),
        ("expanded channels", [i for i, n in enumerate(names) if not n.endswith(".width")]),
    )
    width = 0.8 / (len(searches) + 1)
    for row, (label, which) in enumerate(panels):
        axes = figure.add_subplot(2, 1, row + 1)
        xs = list(range(len(which)))
        axes.bar(
            xs,
            [widest[i] for i in which],
            width * (len(searches) + 1),
            color="0.9",
            label="widest in the space",
        )
        for n, (search, values) in enumerate(searches):
            offset = (n - (len(searches) - 1) / 2) * width
            axes.bar([x + offset for x in xs], [values[i] for i in which], width, label=search)
        axes.set_xticks(
            xs,
            [names[i].replace("stage", "s").replace(".layer", ".l") for i in which],
            rotation=45,
            fontsize=7,
        )
        axes.set_ylabel(label, fontsize=8)
        axes.grid(axis="y", alpha=0.3)
        if row == 0:
            axes.set_title(title, fontsize=10)
            axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")


def plot_fronts(
    path: Path,
    trials: Sequence[Scored],
    front: Sequence[Scored],
    metrics: Sequence[Objective],
    *,
    title: str,
    accuracy_label: str,
    baseline: Sequence[Scored] = (),
    baseline_label: str = "random sample",
    limits: Limits | None = None,
) -> None:
    """Pairwise panels of a front over accuracy and several metrics: accuracy against each
    metric, then each pair of metrics; trials grey, the random sample blue, the front red.

    A front of three or more objectives is no staircase in any one panel: a front point may
    look beaten in a panel by one that is worse on an objective the panel does not show."""
    pairs: list[tuple[Objective | None, Objective]] = [(None, m) for m in metrics]
    pairs += list(itertools.combinations(metrics, 2))
    columns = min(3, len(pairs))
    rows = math.ceil(len(pairs) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.6 * rows + 0.6), dpi=110)
    FigureCanvasAgg(figure)

    def coordinate(point: Scored, metric: Objective | None) -> float:
        return point.accuracy if metric is None else point.value(metric)

    def label(metric: Objective | None) -> str:
        return accuracy_label if metric is None else f"{metric.field} ({metric.unit}, predicted)"

    for n, (y_metric, x_metric) in enumerate(pairs):
        axes = figure.add_subplot(rows, columns, n + 1)
        layers = (
            (trials, "0.6", 10, f"trials ({len(trials)})"),
            (baseline, "tab:blue", 10, f"{baseline_label} ({len(baseline)})"),
            (front, "tab:red", 18, f"Pareto front ({len(front)})"),
        )
        for points, color, size, name in layers:
            if points:
                axes.scatter(
                    [coordinate(p, x_metric) for p in points],
                    [coordinate(p, y_metric) for p in points],
                    s=size,
                    color=color,
                    alpha=0.6 if color == "tab:blue" else 1.0,
                    label=name,
                )
        for metric, vertical in ((x_metric, True), (y_metric, False)):
            if limits is None or metric is None:
                continue
            limit = limits.of(metric)
            if limit is not None:
                line = axes.axvline if vertical else axes.axhline
                line(limit, color="black", linestyle="--", linewidth=0.8, label=metric.option)
        axes.set_xlabel(label(x_metric), fontsize=8)
        axes.set_ylabel(label(y_metric), fontsize=8)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
        if n == 0:
            axes.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
