"""Export many files at once: a process pool, a progress bar, cached files skipped."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path

from models.export import converters
from models.export.api import export_spec
from models.export.cache import artifact_path, cache_root
from models.export.spec import ExportFormat, ExportSpec
from models.layer_key import LayerKey, parse
from models.precision import Precision

# Networks to join from here on, the pool's start-up pays for itself.
JOINS_WORTH_A_POOL = 40


def export_variants(
    keys: Iterable[LayerKey | str],
    fmt: ExportFormat | str = ExportFormat.TFLITE,
    precision: Precision | str = Precision.FP32,
    *,
    workers: int = 2,
    progress: bool = True,
    cache_dir: Path | str | None = None,
) -> dict[LayerKey, Path]:
    """Export every layer key (duplicates once); return each key's cached file, in input order.

    A skip key raises :class:`NothingToExport` before anything is converted.
    """
    parsed = dict.fromkeys(k if isinstance(k, LayerKey) else parse(k) for k in keys)
    specs = {key: ExportSpec.layer(key, fmt, precision) for key in parsed}
    paths = export_specs(specs.values(), workers=workers, progress=progress, cache_dir=cache_dir)
    return {key: paths[spec] for key, spec in specs.items()}


def export_specs(
    specs: Iterable[ExportSpec],
    *,
    workers: int = 2,
    progress: bool = True,
    cache_dir: Path | str | None = None,
) -> dict[ExportSpec, Path]:
    """Export layers and networks alike; return each spec's cached file, in input order.

    Specs already in the cache are not resubmitted. With ``workers > 1`` the conversions run in
    a pool of spawned processes: TensorFlow is not fork-safe, and a fresh interpreter per worker
    also keeps the caller free of TensorFlow's memory and threads. An assembled network's
    missing layers are converted first (each once, however many networks share it); fp32
    networks are then joined, a tenth of a second each: in the pool too when there are many.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    unique = list(dict.fromkeys(specs))
    root = cache_root(cache_dir)
    paths = {spec: artifact_path(spec, root) for spec in unique}
    missing = [s for s in unique if not paths[s].exists()]
    layers = [layer for s in missing if s.assembled for layer in s.layer_specs()]
    first = [s for s in dict.fromkeys([*layers, *missing]) if not s.assembled]
    first = [s for s in first if not artifact_path(s, root).exists()]
    joined = [s for s in missing if s.assembled and s.precision is Precision.FP32]
    # int8 networks are quantised by TensorFlow after joining: seconds each, so in the pool.
    quantised = [s for s in missing if s.assembled and s.precision is not Precision.FP32]
    total = len(first) + len(joined) + len(quantised)
    if not total:
        return paths
    with _progress(_title(unique, len(unique) - len(missing)), total, enabled=progress) as bar:
        _export_all(first, root, workers, bar)
        # A worker takes a second or two to start: worth it for the demo's 250 networks (22 s
        # joined here, 12 s in two workers), not for a handful.
        if len(joined) >= JOINS_WORTH_A_POOL:
            _export_all(joined, root, workers, bar)
        else:
            _export_all(joined, root, 1, bar)
        _export_all(quantised, root, workers, bar)
    return paths


def _export_all(
    todo: list[ExportSpec], root: Path, workers: int, advance: Callable[[str], None]
) -> None:
    # Longest first (a network takes seconds, a layer a fraction): the pool's tail stays short.
    todo = sorted(todo, key=lambda s: -len(s.keys))
    if workers == 1 or len(todo) <= 1:
        for spec in todo:
            export_spec(spec, root)
            advance(_short_label(spec))
    else:
        _export_in_pool(todo, root, min(workers, len(todo)), advance)


def _export_in_pool(
    todo: list[ExportSpec], root: Path, workers: int, advance: Callable[[str], None]
) -> None:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        futures: dict[Future[str], ExportSpec] = {
            pool.submit(
                _export_one,
                spec.kind,
                [str(k) for k in spec.keys],
                spec.fmt.value,
                spec.precision.value,
                spec.method.value,
                str(root),
            ): spec
            for spec in todo
        }
        try:
            for future in as_completed(futures):
                future.result()
                advance(_short_label(futures[future]))
        except BaseException:
            # One failure (or Ctrl-C) stops the rest instead of converting for nothing.
            for future in futures:
                future.cancel()
            raise


def _title(specs: list[ExportSpec], cached: int) -> str:
    kinds = sorted({f"{s.fmt.value} {s.precision.value}" for s in specs})
    title = f"exporting {', '.join(kinds)}"
    return title + (f" ({cached} cached)" if cached else "")


def _short_label(spec: ExportSpec) -> str:
    if spec.kind == "layer":
        return str(spec.keys[0])
    made = "assembled" if spec.assembled else "converted"
    return f"{made} network of {len(spec.keys)} layers"


def _init_worker() -> None:
    converters.quiet_tensorflow()


def _export_one(
    kind: str, keys: list[str], fmt: str, precision: str, method: str, root: str
) -> str:
    # Plain strings cross the process boundary: nothing depends on pickling the dataclasses.
    parsed = [parse(k) for k in keys]
    spec = (
        ExportSpec.layer(parsed[0], fmt, precision)
        if kind == "layer"
        else ExportSpec.network(parsed, fmt, precision, method)
    )
    return str(export_spec(spec, root))


@contextmanager
def _progress(title: str, total: int, *, enabled: bool) -> Iterator[Callable[[str], None]]:
    if not enabled:
        yield lambda _done: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[last]}", style="dim"),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(title, total=total, last="")

        def advance(done: str) -> None:
            bar.update(task, advance=1, last=done)

        yield advance
