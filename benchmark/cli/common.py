"""What every command shares: the console, one-line errors with exit code 2, option parsing, result printing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from ..errors import ConfigError, CxrbenchError

console = Console(width=max(Console().width, 160))  # `list` needs the width; the run report fits in 80
errors = Console(stderr=True)

DEFAULT_CACHE = Path(os.environ.get("CXRBENCH_CACHE", Path.home() / ".cache" / "cxrbench"))
SUBMISSIONS = Path("submissions")

# Options several commands take, spelt once so that their help stays the same everywhere.
DataRoot = Annotated[Path | None, typer.Option(help="Where real datasets live.")]
CacheDir = Annotated[Path, typer.Option(help="Stage cache (env CXRBENCH_CACHE).")]
GeneratorConfig = Annotated[Path | None, typer.Option(
    help="YAML file of options per generator, e.g. `ldm_mask: {preset: tiny}`.")]
Device = Annotated[str, typer.Option(help="cpu or cuda.")]
Regime = Annotated[str | None, typer.Option(help="The task's regime to look at (default: its first, the scarce one).")]


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


def fail(message: str) -> NoReturn:
    errors.print(Text("error: ", style="bold red") + Text(message), highlight=False, soft_wrap=True)  # verbatim
    raise typer.Exit(code=2)


def check_writable(out: Path) -> None:
    """Fail now, in one line, if the result could not be written at `out` once the run is done (a probe file is
    created and removed beside it)."""
    import tempfile

    from ..errors import ConfigError

    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; name the result file, e.g. {out / 'result.json'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".probe"):
            pass
    except OSError as error:
        raise ConfigError(f"--out {out}: cannot write there ({error.strerror or error})") from None


def split_names(value: str | None) -> list[str]:
    return [] if value is None else [part.strip() for part in value.split(",") if part.strip()]


def parse_ratios(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(part) for part in split_names(value)]
    except ValueError:
        raise ConfigError(f"--ratios must be comma-separated numbers, got {value!r}") from None


def show_result(result, fmt: Format) -> None:
    from ..report import markdown, rich_report

    if fmt is Format.json:
        typer.echo(result.model_dump_json(indent=1))
    elif fmt is Format.markdown:
        typer.echo(markdown(result), nl=False)
    else:
        console.print(rich_report(result))


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Bad settings and protocol errors end as one line and exit code 2, never a traceback."""
    try:
        yield
    except ValidationError as error:
        first = error.errors()[0]
        fail(f"invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}")
    except CxrbenchError as error:
        fail(str(error))


def read_generator_config(path: Path | None) -> dict:
    import yaml

    if path is None:
        return {}
    try:
        options = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read generator config {path}: {error}") from None
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ConfigError(f"generator config {path} must map generator names to option mappings")
    return options
