"""The Pareto plot: accuracy against latency, every trial, the front marked (PNG, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nas.front import Scored, pareto_front


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
) -> None:
    """Write a PNG; ``measured`` are (measured ms, accuracy) points of measured architectures."""
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
    front = pareto_front(trials)
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
