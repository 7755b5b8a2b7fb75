"""``hwlat export``: layer variants and whole architectures to TFLite or ONNX files.

Every export goes through the content-addressed cache (``$HWLAT_CACHE_DIR``); ``-o`` gets a
copy, so repeating a command costs a file copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hwlat.cli.options import DEFAULT_SERVICE, ServiceUrl, Token, space_of
from models import LayerKey, parse, parse_architecture
from models.errors import UserInputError
from models.precision import Precision

if TYPE_CHECKING:
    from models.export import ExportFormat

app = typer.Typer(
    help="Export layer variants and architectures to TFLite or ONNX (cached).",
    no_args_is_help=True,
)

# Plain strings, validated by ExportFormat.parse: a bad value then ends in the one-line error
# of `hwlat` rather than click's multi-line usage screen.
FormatOption = Annotated[
    str, typer.Option("--format", "-f", help="tflite (Keras -> TFLite) or onnx (torch -> ONNX).")
]
Int8Option = Annotated[
    bool,
    typer.Option("--int8", help="Full-integer int8 quantisation with a seeded calibration set."),
]
SpaceName = Annotated[str, typer.Argument(help="Search space name (see `hwlat space list`).")]


@app.command("layer")
def layer(
    key: Annotated[str, typer.Argument(help="Layer key, e.g. mbconv_hw56_i24_o40_k5_e6_s2.")],
    fmt: FormatOption = "tflite",
    int8: Int8Option = False,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory to write <key>[.int8].<format> to.")
    ] = Path("."),
) -> None:
    """Export one layer variant; prints the written file."""
    from models.export import ExportFormat, export_layer
    from models.export.cache import atomic_copy

    parsed = parse(key)
    fmt_, precision = ExportFormat.parse(fmt), _precision(int8)
    if output.exists() and not output.is_dir():
        raise UserInputError(f"-o {output} is a file; `export layer` writes into a directory")
    target = output / layer_filename(parsed, fmt_, precision)
    atomic_copy(export_layer(parsed, fmt_, precision), target)
    typer.echo(str(target))


@app.command("arch")
def arch(
    name: SpaceName,
    indices: Annotated[
        str,
        typer.Argument(
            help="One candidate index per searchable layer, comma-separated, e.g. 0,1,4,..."
        ),
    ],
    fmt: FormatOption = "tflite",
    int8: Int8Option = False,
    convert: Annotated[
        bool,
        typer.Option(
            "--convert",
            help="Convert the whole network instead of joining the cached layer files "
            "(tflite joins by default; onnx always converts).",
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="File to write; default <space>_<indices>.<format> here."
        ),
    ] = None,
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
) -> None:
    """Export a whole architecture (stem to classifier); prints the written file. A registered
    space's spec is fetched from the service."""
    from models.export import ExportFormat, ExportMethod, export_network
    from models.export.cache import atomic_copy

    space = space_of(name, service, token)
    choice = space.validate(parse_architecture(indices))
    fmt_, precision = ExportFormat.parse(fmt), _precision(int8)
    if output is None:
        suffix = ".int8" if precision is Precision.INT8 else ""
        output = Path(f"{name}_{'-'.join(map(str, choice))}{suffix}.{fmt_.value}")
    if output.is_dir():
        raise UserInputError(f"-o {output} is a directory; `export arch` writes a file")
    method = ExportMethod.CONVERT if convert else None
    atomic_copy(export_network(space, choice, fmt_, precision, method=method), output)
    typer.echo(str(output))


@app.command("variants")
def variants(
    name: SpaceName,
    fmt: FormatOption = "tflite",
    int8: Int8Option = False,
    workers: Annotated[int, typer.Option(min=1, help="Converter processes.")] = 2,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also copy every file into this directory."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
    service: ServiceUrl = DEFAULT_SERVICE,
    token: Token = None,
) -> None:
    """Export every layer variant of a search space; prints `<key> <file>` per line. A
    registered space's spec is fetched from the service."""
    from models.export import ExportFormat, export_variants
    from models.export.cache import atomic_copy

    fmt_, precision = ExportFormat.parse(fmt), _precision(int8)
    paths = export_variants(
        space_of(name, service, token).variants(),
        fmt_,
        precision,
        workers=workers,
        progress=progress,
    )
    for key, path in paths.items():
        if output is not None:
            path = output / layer_filename(key, fmt_, precision)
            atomic_copy(paths[key], path)
        typer.echo(f"{key}\t{path}")


def layer_filename(key: LayerKey, fmt: ExportFormat, precision: Precision) -> str:
    # int8 gets its own name so that fp32 and int8 exports can share a directory.
    suffix = ".int8" if precision is Precision.INT8 else ""
    return f"{key}{suffix}.{fmt.value}"


def _precision(int8: bool) -> Precision:
    return Precision.INT8 if int8 else Precision.FP32
