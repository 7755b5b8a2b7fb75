"""The searches' plots (PNG, Agg): the Pareto front, and FiGS's channels per layer."""

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
