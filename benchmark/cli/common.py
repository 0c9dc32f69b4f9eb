"""What every command shares: the console, one-line errors with exit code 2, option parsing, result printing."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.text import Text

from ..errors import ConfigError, CxrbenchError, GeneratorError

if TYPE_CHECKING:
    from ..ray_executor import RayCluster

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


class ExecutorKind(str, Enum):
    local = "local"
    ray = "ray"


Executor = Annotated[ExecutorKind, typer.Option(
    help="local: a pool of worker processes on this machine; ray: each generator fit and cell a Ray task, on a local "
         "Ray instance of --workers CPUs or the cluster at --ray-address (pip install 'cxrbench[ray]'; "
         "docs/scaling.md).")]
RayAddress = Annotated[str | None, typer.Option(
    help="With --executor ray: the Ray cluster to run on (auto, host:6379 or ray://host:10001); its nodes must see "
         "--cache-dir at the same absolute path. Default: a local Ray instance.")]


class RunProfile(str, Enum):
    protocol = "protocol"
    smoke = "smoke"


class LabelConditions(str, Enum):
    multi = "multi"
    single = "single"


# The options that choose a run's cells and its keys: `run` computes them, `plan` prices them.
Generators = Annotated[str, typer.Option("--generator", "-g", help="Generator name(s), comma-separated.")]
Tasks = Annotated[str | None, typer.Option("--task", help="Task name(s), comma-separated (default: the suite's).")]
Suite = Annotated[str, typer.Option(help="Suite whose tasks to run when --task is not given.")]
Ratios = Annotated[str | None, typer.Option(help="Synthetic per real image, e.g. 0.5,1,2.")]
Seeds = Annotated[int | None, typer.Option(help="Seeds per arm (>= 2; default: the task's).")]
Regimes = Annotated[str | None, typer.Option(help="The tasks' regimes to run, comma-separated, e.g. scarce "
                                                  "(default: all of them).")]
TrainSize = Annotated[int | None, typer.Option(help="Real training images, outside the protocol's regimes "
                                                     "(instead of --regimes).")]
Profile = Annotated[RunProfile, typer.Option(help="protocol, or smoke: each task's fixed smoke settings (fewer "
                                                  "seeds, the scarce regime), for `cxrbench check`; never submitted.")]
FirstSeed = Annotated[int, typer.Option(help="The arms' first seed (seeds first_seed, first_seed + 1, ...); "
                                             "another start repeats a check on new seeds.")]
LabelConditionsOption = Annotated[LabelConditions, typer.Option(
    help="multi: the protocol's label conditions (real label vectors); single: at most one finding each "
         "(exploratory, never submitted).")]
MaskTransforms = Annotated[bool, typer.Option(
    help="Randomly transform the real masks of mask conditions (the protocol's); --no-mask-transforms: the masks "
         "as they are (exploratory, never submitted).")]
Quality = Annotated[bool | None, typer.Option(
    "--quality/--no-quality", show_default=False,
    help="Measure each synthetic arm's fidelity, memorisation and re-identification (docs/fidelity.md); "
         "--no-quality: the Δs alone. Default: measured in a protocol run, not in a smoke run.")]


def run_config(*, generator: str, task: str | None, suite: str, ratios: str | None, seeds: int | None,
               regimes: str | None, train_size: int | None, profile: RunProfile, first_seed: int,
               label_conditions: LabelConditions, mask_transforms: bool, quality: bool | None, data_root: Path | None,
               device: str, generator_config: Path | None, **settings: Any):
    """The RunConfig of the options above as typed (`settings`: the run's other fields, e.g. n_boot)."""
    from ..registry import suite_tasks
    from ..schemas import RunConfig

    fixed = [option for option, value in (("--regimes", regimes), ("--train-size", train_size), ("--seeds", seeds),
                                          ("--ratios", ratios)) if value is not None]
    if profile is RunProfile.smoke and fixed:
        raise ConfigError(f"--profile smoke fixes each task's regimes, seeds and ratios; drop {', '.join(fixed)}")
    return RunConfig(tasks=given_names(task, "--task") or suite_tasks(suite),
                     generators=given_names(generator, "--generator"), ratios=parse_ratios(ratios), seeds=seeds,
                     regimes=given_names(regimes, "--regimes"), train_size=train_size, first_seed=first_seed,
                     profile=profile.value, data_root=data_root, device=device,
                     label_conditions=label_conditions.value, mask_transforms=mask_transforms, quality=quality,
                     generator_config=read_generator_config(generator_config), **settings)


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


def fail(message: str) -> NoReturn:
    errors.print(Text("error: ", style="bold red") + Text(message), highlight=False, soft_wrap=True)  # verbatim
    raise typer.Exit(code=2)


RESULT_ROOM = 4 * 2**20
"""Free bytes a command needs beside its result file before it starts (a suite's result is a few hundred kB)."""
CACHE_ROOM = 64 * 2**20
"""Free bytes the cache's disk needs before a command starts: a full disk is refused before any work. A disk that
fills up during the work stops it at the entry that could not be written; the entries written stay valid."""


def ray_cluster(executor: ExecutorKind, address: str | None, cache_dir: Path) -> RayCluster | None:
    """The Ray executor's settings (`ray_executor.RayCluster`) for `--executor ray`, checked before any work (Ray
    installed, a cache every node can see); None for the local pool."""
    if executor is ExecutorKind.local:
        if address is not None:
            raise ConfigError("--ray-address needs --executor ray")
        return None
    from ..ray_executor import RayCluster, require_ray, shared_cache_root

    require_ray()
    shared_cache_root(cache_dir, RayCluster(address))
    return RayCluster(address)


def check_writable(out: Path) -> None:
    """Fail now, in one line, if the result could not be written at `out` once the run is done."""
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; name the result file, e.g. {out / 'result.json'}")
    check_folder(out.parent, "--out", RESULT_ROOM, shown=out)


def check_cache(cache_dir: Path) -> None:
    """Fail now, in one line, if the cache cannot take what the command computes (read-only, or a full disk)."""
    check_folder(cache_dir, "--cache-dir", CACHE_ROOM)


def check_folder(folder: Path, option: str, needed: int, shown: Path | None = None) -> None:
    """`folder` exists (made if need be), takes a new file (a probe is created and removed), and its disk has
    `needed` bytes free; else a ConfigError naming `option` and `shown` (default: the folder)."""
    import tempfile

    shown = shown or folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".cxrbench-", suffix=".probe"):
            pass
    except OSError as error:
        raise ConfigError(f"{option} {shown}: cannot write there ({error.strerror or error})") from None
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise ConfigError(f"{option} {shown}: its disk has {free / 2**20:.1f} MiB free, and the command needs at "
                          f"least {needed / 2**20:.0f} MiB there before it starts")


def write_result(out: Path, result: BaseModel, cache_dir: Path) -> None:
    """Write `result` at `out` atomically. If the disk refuses it now that the work is done, one line says so and
    what is kept: the result, printed before, and every entry computed, in the cache (a `run` again only rescores)."""
    from ..cache import write_atomic

    try:
        write_atomic(out, result.model_dump_json(indent=1).encode())
    except OSError as error:
        raise ConfigError(f"the result could not be written to {out} ({error.strerror or error}); it is printed above, "
                          f"and the cache {cache_dir} keeps what it computed") from None


def split_names(value: str | None) -> list[str]:
    return [] if value is None else [part.strip() for part in value.split(",") if part.strip()]


def given_names(value: str | None, option: str) -> list[str] | None:
    """The comma-separated names of an option, or None when it was not given. Given but naming nothing (`--task ""`)
    is an error: read as "not given" it would quietly run the option's default, e.g. the whole suite."""
    if value is None:
        return None
    names = split_names(value)
    if not names:
        raise ConfigError(f"{option} {value!r} names nothing; leave {option} out for its default")
    return names


def parse_ratios(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(part) for part in split_names(value)]
    except ValueError:
        raise ConfigError(f"--ratios must be comma-separated numbers, got {value!r}") from None


def show(model: BaseModel, fmt: Format, *, markdown: Callable[[Any], str], table: Callable[[Any], Any]) -> None:
    """Print `model` as its JSON, as Markdown (`markdown(model)`) or as a rich renderable (`table(model)`)."""
    if fmt is Format.json:
        typer.echo(model.model_dump_json(indent=1))
    elif fmt is Format.markdown:
        typer.echo(markdown(model), nl=False)
    else:
        console.print(table(model))


def show_result(result, fmt: Format) -> None:
    from ..report import markdown, rich_report

    show(result, fmt, markdown=markdown, table=rich_report)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Bad settings and protocol errors end as one line and exit code 2, never a traceback."""
    try:
        yield
    except ValidationError as error:
        first = error.errors()[0]
        fail(f"invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}")
    except CxrbenchError as error:
        if isinstance(error, GeneratorError) and error.__cause__ is not None:
            logging.getLogger(__name__).info("the generator's traceback:", exc_info=error)  # with --verbose
        fail(str(error))
    except OSError as error:  # the machine, not the input: a disk that filled up or went away during the work
        fail(f"{error.strerror or error}: {error.filename}" if error.filename else str(error))


GENERATOR_CONFIG_LIMIT = 1_000_000
"""Bytes a generator config may have: a file of options is a few lines; /dev/zero must not be read until memory
runs out."""


def read_generator_config(path: Path | None) -> dict:
    """The `--generator-config` file as {generator name: options}; each generator's options are validated by the
    run (`checked_config`), which knows which generators it has."""
    import yaml

    if path is None:
        return {}

    def refused(why: str) -> ConfigError:
        return ConfigError(f"cannot read generator config {path}: {why}")

    try:
        with path.open("rb") as handle:
            data = handle.read(GENERATOR_CONFIG_LIMIT + 1)
    except OSError as error:
        raise refused(error.strerror or str(error)) from None
    if len(data) > GENERATOR_CONFIG_LIMIT:
        raise refused(f"larger than {GENERATOR_CONFIG_LIMIT:,} bytes; it must be a YAML file of options")
    try:
        options = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise refused(f"not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start}); it must be a YAML "
                      f"file of options") from None
    except yaml.YAMLError as error:
        raise refused(f"not valid YAML ({' '.join(str(error).split())})") from None
    if not isinstance(options, dict) or not all(isinstance(k, str) and isinstance(v, dict)
                                                for k, v in options.items()):
        raise ConfigError(f"generator config {path} must map generator names to option mappings")
    return options
