"""``hwlat search spnas|pareto``: the NAS search engine (``nas/``) driven by the service.

torch, Optuna and the data set are imported inside the commands, so ``hwlat --help`` stays
fast. Bad input (unknown device or space, no predictor yet, a target the space cannot reach)
ends with a one-line ``error: ...`` and exit status 2, from the one handler of ``hwlat``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hwlat.cli.options import (
    DEFAULT_SERVICE,
    Device,
    GateOption,
    ServiceUrl,
    Space,
    Token,
    space_of,
)
from hwlat.progress import progress_bar
from models import DEFAULT_SPACE, format_architecture
from models.errors import UserInputError

if TYPE_CHECKING:
    from models import SearchSpace
    from nas.latency import ServiceLatencySource
    from nas.objectives import Limits, Objective
    from nas.runs import Measuring

app = typer.Typer(
    name="search",
    help=(
        "Search a space for architectures that are fast on a device. The searches ask the "
        "service for the device's latencies, so the device needs a predictor first "
        "(hwlat fit).\n\n"
        "spnas: Single-Path NAS. Trains one supernet whose per-layer thresholds pick kernel, "
        "expansion, SE and skip, with the loss pulled toward a latency you give "
        "(--target-ms); returns one architecture that meets it.\n\n"
        "figs: FiGS, fine-grained channel search. Gates every channel of a channel space "
        "(figs-mbv2-224) and prices the live ones in the device's latency (--target-ms); "
        "--flops-twin runs the same search on FLOPs for comparison.\n\n"
        "pareto: an NSGA-II search (Optuna) for the trade-off between accuracy and latency "
        "(--objectives adds peak memory and energy; --max-latency-ms, --max-memory-mb and "
        "--max-energy-mj limit them); returns the Pareto front as JSON and a plot. Several "
        "processes, on several machines, can share one study (--storage, --study).\n\n"
        "Accuracy is a proxy (a small digits task trained on this CPU); latency is the "
        "device's, predicted by the service, or measured with --measure."
    ),
    no_args_is_help=True,
    add_completion=False,
)

Measure = Annotated[
    bool,
    typer.Option(
        help="Measure the result on the device: queue a job and wait for an agent to run it."
    ),
]
RunHostAgent = Annotated[
    bool, typer.Option(help="With --measure on a host device: run the host agent in-process.")
]
MeasureTimeout = Annotated[
    float, typer.Option(help="Seconds to wait for the measuring job.", min=1)
]
Threads = Annotated[
    int | None, typer.Option(min=1, help="torch CPU threads (default: torch's choice).")
]
Resolution = Annotated[
    int, typer.Option(min=8, max=256, help="Training resolution of the proxy task (px).")
]
FORMULAS = ("exact", "seed")
# Options spnas and figs share: both train to a target and land on it.
TargetMs = Annotated[
    float, typer.Option("--target-ms", help="Latency to land on, in ms (predicted).")
]
Epochs = Annotated[int, typer.Option(min=1, help="Training epochs in all.")]
WarmupEpochs = Annotated[
    int, typer.Option(min=0, help="Epochs of weights only, before the latency term.")
]
TolerancePct = Annotated[
    float,
    typer.Option(
        min=0,
        help="Landing band around the target in %: the decoded architecture is moved into it, "
        "changing first the decisions the search was least sure of.",
    ),
]
Land = Annotated[
    bool, typer.Option(help="Land on the target; --no-land keeps the decoded architecture.")
]


@app.command("spnas")
def spnas(
    device: Device,
    target_ms: TargetMs,
    space: Space = DEFAULT_SPACE,
    epochs: Epochs = 8,
    warmup_epochs: WarmupEpochs = 2,
    resolution: Resolution = 32,
    tolerance_pct: TolerancePct = 1.0,
    land: Land = True,
    formula: Annotated[
        str, typer.Option(help="Runtime term: exact (multilinear) or seed (the paper's).")
    ] = "exact",
    seed: Annotated[int, typer.Option(help="Seed of weights, batches and split.")] = 0,
    threads: Threads = None,
    measure: Measure = False,
    run_host_agent: RunHostAgent = False,
    measure_timeout: MeasureTimeout = 3600.0,
    gate: GateOption = True,
    report: Annotated[Path, typer.Option(help="JSON report.")] = Path("spnas-report.json"),
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
) -> None:
    """Single-Path NAS to a latency target: one architecture, predicted (or measured) on it."""
    from nas.latency import ServiceLatencySource, device_table

    search_space = space_of(space, service, token)
    if not search_space.fixed_shape:
        raise UserInputError(
            f"Single-Path NAS searches one superkernel per layer of fixed shape; {space} is "
            "elastic (its resolution, widths or depths vary): search it with `hwlat search "
            "pareto`"
        )
    if formula not in FORMULAS:
        raise UserInputError(f"--formula {formula!r}: choose one of {', '.join(FORMULAS)}")
    with ServiceLatencySource(service, token) as source:
        # Everything the service can refuse is asked before torch is even imported.
        table = device_table(source, device, search_space)
        table.require_reachable(target_ms)
        measuring = _measuring(
            source, service, token, device, measure, run_host_agent, measure_timeout, gate
        )
        from nas.runs import spnas_run
        from nas.runtime_term import RuntimeFormula
        from nas.spnas import SpnasConfig

        config = SpnasConfig(
            target_ms=target_ms,
            epochs=epochs,
            warmup_epochs=warmup_epochs,
            resolution=resolution,
            tolerance=tolerance_pct / 100 if land else None,
            formula=RuntimeFormula(formula),
            seed=seed,
            threads=threads,
        )
        with progress_bar("searching") as advance:
            result = spnas_run(
                source,
                device,
                search_space,
                config,
                measuring=measuring,
                progress=lambda step, total, _log: advance(step, total),
                table=table,
            )
    _write(report, result)
    _spnas_summary(result, report)


@app.command("pareto")
def pareto(
    device: Device,
    trials: Annotated[
        int, typer.Option(min=1, help="Trials the study should hold, counting every process.")
    ],
    space: Space = DEFAULT_SPACE,
    population: Annotated[
        int, typer.Option(min=2, help="NSGA-II population; one predict request per population.")
    ] = 16,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage shared by several processes, e.g. "
            "postgresql+psycopg://user@host/db (default: in memory, this run only)."
        ),
    ] = None,
    study: Annotated[str, typer.Option(help="Study name inside the storage.")] = "hwlat-pareto",
    wait_for_peers: Annotated[
        float,
        typer.Option(
            min=0, help="Seconds to wait for other processes' running trials before reporting."
        ),
    ] = 600.0,
    supernet: Annotated[
        Path | None,
        typer.Option(
            help="Supernet weights: loaded if the file exists, else trained and saved there. "
            "Every process of a shared study must score with the same file."
        ),
    ] = None,
    supernet_epochs: Annotated[
        int, typer.Option(min=1, help="Epochs to train the one-shot supernet.")
    ] = 10,
    resolution: Resolution = 32,
    seed: Annotated[
        int, typer.Option(help="Seed of the supernet; the sampler uses seed + worker index.")
    ] = 0,
    threads: Threads = None,
    measure: Measure = False,
    run_host_agent: RunHostAgent = False,
    measure_timeout: MeasureTimeout = 3600.0,
    gate: GateOption = True,
    report: Annotated[Path, typer.Option(help="JSON report with the front.")] = Path(
        "pareto-report.json"
    ),
    plot: Annotated[
        Path,
        typer.Option(
            help="PNG plot of accuracy vs latency (pairwise panels with more objectives)."
        ),
    ] = Path("pareto-front.png"),
    objectives: Annotated[
        str,
        typer.Option(
            help="accuracy (maximised) and one or more of latency, memory, energy (minimised), "
            "comma-separated; memory and energy need a device measured for them."
        ),
    ] = "accuracy,latency",
    max_latency_ms: Annotated[
        float | None, typer.Option(help="Limit: predicted latency at most this, in ms.")
    ] = None,
    max_memory_mb: Annotated[
        float | None,
        typer.Option(help="Limit: predicted peak memory at most this, in MB (2^20 bytes)."),
    ] = None,
    max_energy_mj: Annotated[
        float | None, typer.Option(help="Limit: predicted energy per inference, in mJ.")
    ] = None,
    compare_random: Annotated[
        int,
        typer.Option(
            min=0,
            help="Also score this many random architectures (seeded) and compare their "
            "hypervolume with the study's at one reference point (0: off).",
        ),
    ] = 0,
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
) -> None:
    """Pareto search (NSGA-II): the front of accuracy against latency (and peak memory and
    energy, with --objectives) of a space on a device, within the limits given."""
    from nas.latency import ServiceLatencySource, device_table
    from nas.objectives import Limits, parse_objectives

    minimised = parse_objectives(objectives)
    limits = Limits(max_latency_ms, max_memory_mb, max_energy_mj)
    search_space = space_of(space, service, token)
    with ServiceLatencySource(service, token) as source:
        # Everything the service can refuse is asked before torch is even imported.
        table = device_table(source, device, search_space)
        limits.require_reachable(table)
        _require_metrics(source, device, search_space, minimised, limits)
        import optuna
        import torch

        from nas.objectives import DEFAULT_OBJECTIVES
        from nas.one_shot import OneShotConfig
        from nas.pareto import ParetoConfig
        from nas.plot import plot_front, plot_fronts
        from nas.runs import load_or_train_supernet, pareto_run, scored_trials

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if threads is not None:
            torch.set_num_threads(threads)
        config = ParetoConfig(
            trials=trials,
            population=population,
            seed=seed,
            storage=storage,
            study_name=study,
            wait_for_peers_s=wait_for_peers,
            objectives=minimised,
            limits=limits,
        )
        with progress_bar("training the supernet") as advance:
            net = load_or_train_supernet(
                search_space,
                resolution,
                OneShotConfig(epochs=supernet_epochs, seed=seed),
                supernet,
                advance,
            )
        measuring = _measuring(
            source, service, token, device, measure, run_host_agent, measure_timeout, gate
        )
        with progress_bar("trials in the study") as advance:
            result, outcome = pareto_run(
                source,
                device,
                search_space,
                config,
                net,
                measuring=measuring,
                progress=advance,
                table=table,
                compare_random=compare_random,
            )
    _write(report, result)
    title = f"{space} on device {device}: {len(outcome.trials)} trials"
    accuracy_label = f"one-shot accuracy, digits {net.resolution} px (proxy)"
    front = [r.scored() for r in outcome.front]
    if minimised == DEFAULT_OBJECTIVES:
        measured = [
            (float(row["measured_ms"]), float(row["accuracy"]))
            for row in result["front"]
            if row["measured_ms"] is not None
        ]
        plot_front(
            plot,
            scored_trials(outcome),
            title=title,
            accuracy_label=accuracy_label,
            latency_label="latency, ms (predicted" + ("; x: measured)" if measuring else ")"),
            measured=measured,
            baseline=outcome.random,
            front=front,
        )
    else:
        plot_fronts(
            plot,
            scored_trials(outcome),
            front,
            minimised,
            title=title,
            accuracy_label=accuracy_label,
            baseline=outcome.random,
            limits=limits,
        )
    _pareto_summary(result, report, plot)


FIGS_SPACE = "figs-mbv2-224"


@app.command("figs")
def figs(
    device: Device,
    target_ms: TargetMs,
    space: Annotated[
        str,
        typer.Option(
            help="A channel space: stage widths and layer expansions are its only decisions."
        ),
    ] = FIGS_SPACE,
    flops_twin: Annotated[
        bool,
        typer.Option(
            help="Also run the same search on MorphNet's FLOP cost, steered to the FLOPs the "
            "latency search found, and report both side by side."
        ),
    ] = False,
    epochs: Epochs = 10,
    warmup_epochs: WarmupEpochs = 2,
    resolution: Resolution = 32,
    tolerance_pct: TolerancePct = 1.0,
    land: Land = True,
    seed: Annotated[int, typer.Option(help="Seed of weights, gates' noise, batches, split.")] = 0,
    threads: Threads = None,
    measure: Measure = False,
    run_host_agent: RunHostAgent = False,
    measure_timeout: MeasureTimeout = 3600.0,
    gate: GateOption = True,
    report: Annotated[Path, typer.Option(help="JSON report.")] = Path("figs-report.json"),
    plot: Annotated[Path, typer.Option(help="PNG: channels per layer.")] = Path(
        "figs-channels.png"
    ),
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
) -> None:
    """FiGS: gate every channel, price live channels in the device's latency, land on a target.

    Each stage's output channels and each layer's expanded channels carry Logistic-Sigmoid
    gates; the loss is the proxy task's plus lambda times the log of the device's latency at
    the expected live channels (the service's channel cost, evaluated in-process at every
    step), lambda steered to --target-ms. The gates are decoded to the space's nearest
    architecture and landed within --tolerance-pct of the target."""
    from nas.latency import ServiceLatencySource

    search_space = space_of(space, service, token)
    with ServiceLatencySource(service, token) as source:
        # The service refuses a space that is no channel space, or a device with no layer model,
        # before any training; the target's range is checked in the search itself.
        measuring = _measuring(
            source, service, token, device, measure, run_host_agent, measure_timeout, gate
        )
        from nas.figs import FigsConfig
        from nas.plot import plot_channels
        from nas.runs import figs_run

        config = FigsConfig(
            target=target_ms,
            epochs=epochs,
            warmup_epochs=warmup_epochs,
            resolution=resolution,
            tolerance=tolerance_pct / 100 if land else None,
            seed=seed,
            threads=threads,
        )
        label = "FiGS (latency, then the FLOPs twin)" if flops_twin else "FiGS"
        with progress_bar(label) as advance:
            result = figs_run(
                source,
                device,
                search_space,
                config,
                flops_twin=flops_twin,
                measuring=measuring,
                progress=advance,
            )
    _write(report, result)
    searches = [("latency-driven", result["result"]["channels"])]
    if result["flops_twin"] is not None:
        searches.append(("FLOPs-driven", result["flops_twin"]["channels"]))
    plot_channels(
        plot,
        [d["name"] for d in result["decisions"]],
        [d["max_channels"] for d in result["decisions"]],
        searches,
        title=f"FiGS on device {device} ({space}), target {target_ms:g} ms",
    )
    _figs_summary(result, report, plot)


# -- helpers -----------------------------------------------------------------------------------


def _measuring(
    source: ServiceLatencySource,
    service: str,
    token: str | None,
    device: int,
    measure: bool,
    run_host_agent: bool,
    timeout_s: float,
    gate: bool,
) -> Measuring | None:
    from nas.runs import Measuring

    if run_host_agent and not measure:
        raise UserInputError("--run-host-agent measures; add --measure")
    if not measure:
        return None
    run_agent = _host_agent(service, token, device, gate) if run_host_agent else None
    return Measuring(source, timeout_s=timeout_s, run_agent=run_agent)


def _require_metrics(
    source: ServiceLatencySource,
    device: int,
    space: SearchSpace,
    objectives: tuple[Objective, ...],
    limits: Limits,
) -> None:
    """Ask for one architecture's memory and energy, if the search needs them, before any
    training: a device never measured for them is refused now (409, saying how to measure)."""
    from nas.objectives import device_metrics, metrics_needed

    asked = device_metrics(metrics_needed(objectives, limits))
    if asked:
        source.predict(device, space.name, [[0] * space.num_layers], asked)


def _host_agent(service: str, token: str | None, device: int, gate: bool) -> Callable[[], None]:
    from device_agents.quality import gate_for
    from hwlat.pipeline import host_agent_runner
    from latency_api import HwlatClient

    def run() -> None:
        with HwlatClient(service, token) as client:
            host_agent_runner(client, device, gate=gate_for(gate))()

    return run


def _write(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def _spnas_summary(report: dict[str, Any], path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    result = report["result"]
    table = Table(title=f"Single-Path NAS on device {report['device_id']} ({report['space']})")
    for column in ("target ms", "predicted ms", "measured ms", "proxy accuracy"):
        table.add_column(column, justify="right")
    measured = result["measured_ms"]
    table.add_row(
        f"{result['target_ms']:.3f}",
        f"{result['predicted_ms']:.3f} ({result['predicted_error_pct']:+.1f}%)",
        "-" if measured is None else f"{measured:.3f} ({result['measured_error_pct']:+.1f}%)",
        f"{result['proxy_accuracy']:.3f}",
    )
    console = Console()
    console.print(table)
    console.print(f"architecture: {format_architecture(result['architecture'])}")
    console.print(f"              {' '.join(result['labels'])}")
    landing = report["landing"]
    if landing is not None and landing["flips"]:
        console.print(
            f"decoded {format_architecture(report['decoded']['architecture'])} "
            f"({report['decoded']['predicted_ms']:.3f} ms), landed with "
            f"{len(landing['flips'])} flip(s)"
        )
    console.print(f"latency: {report['latency']}")
    console.print(report["note"])
    console.print(f"report: {path}")


def _pareto_summary(report: dict[str, Any], path: Path, plot: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Pareto front: {len(report['front'])} of {report['trials_in_study']} trials "
        f"(study {report['study']}, device {report['device_id']}, {report['space']})"
    )
    # The metrics every front point carries beyond latency (memory, energy), as predicted.
    extra = [
        (field, unit)
        for field, unit in (("peak_memory_mb", "MB"), ("energy_mj", "mJ"))
        if report["front"] and field in report["front"][0]
    ]
    # With --measure, each metric's measured value follows its predicted one.
    measured_extra = [
        (f"measured_{field}", f"measured {unit}")
        for field, unit in extra
        if f"measured_{field}" in report["front"][0]
    ]
    columns = [
        "trial",
        "accuracy",
        "predicted ms",
        *(u for _, u in extra),
        "measured ms",
        *(label for _, label in measured_extra),
    ]
    for column in (*columns, "architecture"):
        table.add_column(column, justify="right" if column != "architecture" else "left")

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for row in report["front"]:
        table.add_row(
            str(row["trial"]),
            f"{row['accuracy']:.3f}",
            f"{row['latency_ms']:.3f}",
            *(f"{row[field]:.3f}" for field, _ in extra),
            number(row["measured_ms"]),
            *(number(row[field]) for field, _ in measured_extra),
            format_architecture(row["architecture"]),
        )
    console = Console()
    console.print(table)
    if report["constraints"]:
        limits = ", ".join(f"{k} <= {v:g}" for k, v in report["constraints"].items())
        console.print(
            f"{report['trials_feasible']} of {report['trials_in_study']} trials within the "
            f"limits ({limits})"
            + ("; none met them, so the front is empty" if not report["trials_feasible"] else "")
        )
    hv = report["hypervolume"]
    reference = hv["reference"]
    where = (
        "no reference (no feasible trial)"
        if reference is None
        else "reference: " + ", ".join(f"{k} {v:.3f}" for k, v in reference.items())
    )
    console.print(
        f"hypervolume {hv['value']:.3f} {hv['unit']} ({where}); "
        f"{report['evaluated_here']} trials evaluated by this process"
    )
    if "random" in hv:
        random = hv["random"]
        ratio = "-" if random["ratio"] is None else f"{random['ratio']:.2f}"
        console.print(
            f"random sample: {random['architectures']} architectures (seed {random['seed']}, "
            f"{random['feasible']} feasible), hypervolume {random['value']:.3f}; "
            f"study / random = {ratio}"
        )
    console.print(f"accuracy: {report['accuracy_estimate']}")
    console.print(f"latency: {report['latency']}")
    console.print(report["note"])
    console.print(f"report: {path}, plot: {plot}")


def _figs_summary(report: dict[str, Any], path: Path, plot: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"FiGS on device {report['device_id']} ({report['space']})")
    for column in ("cost", "target", "MFLOPs", "predicted ms", "measured ms", "proxy accuracy"):
        table.add_column(column, justify="right")
    rows = [report["result"], report["flops_twin"]]
    for row in (r for r in rows if r is not None):
        measured = row["measured_ms"]
        table.add_row(
            row["cost"],
            f"{row['target']:.3f} {row['unit']}",
            f"{row['mflops']:.1f}",
            f"{row['predicted_ms']:.3f} ({row['predicted_error_pct']:+.1f}%)",
            "-" if measured is None else f"{measured:.3f} ({row['measured_error_pct']:+.1f}%)",
            f"{row['proxy_accuracy']:.3f}",
        )
    console = Console()
    console.print(table)
    console.print(f"architecture: {format_architecture(report['result']['architecture'])}")
    console.print(f"latency: {report['latency']}")
    console.print(report["note"])
    console.print(f"report: {path}, plot: {plot}")
