"""What a cell, a synthetic set and a task's data cost, from figures measured on a named machine (costs.json).

Nothing here guesses: a price is a measured figure (a whole cell of the task and regime on the device) or a
measured per-image figure times the work the recipe fixes (its steps x batch size in training, its passes over
val, test and, for recomputed BatchNorm statistics, the real training images); where the table has no figure
for the device, the price is None and `cxrbench plan` says "not measured". `tests/benchmarks/measure_costs.py`
measures the table again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

TABLE = Path(__file__).with_name("costs.json")
"""The committed table, refreshed by `tests/benchmarks/measure_costs.py`."""


class _Measured(BaseModel):
    """Where a figure comes from: the command that measured it, the machine (and what else ran on it), the day."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    command: str
    machine: str
    date: str

    def identity(self) -> tuple:
        """What the entry is a figure of; a new measurement of the same identity replaces it."""
        return tuple(getattr(self, name) for name in self.model_fields if name in ("task", "regime", "device",
                                                                                  "generator"))


class CellCost(_Measured):
    task: str
    regime: str
    device: str
    cpu_seconds: float = Field(gt=0)
    wall_seconds: float = Field(gt=0)
    what: str


class StepCost(_Measured):
    task: str
    device: str
    train_seconds_per_image: float = Field(gt=0)
    infer_seconds_per_image: float = Field(gt=0)
    what: str


class SamplingCost(_Measured):
    generator: str
    task: str
    device: str
    cpu_seconds_per_image: float = Field(gt=0)
    what: str


class DatasetSize(_Measured):
    """A real task's split sizes counted in the dataset's published metadata: what a plan without the data uses."""

    task: str
    train: int = Field(gt=0)
    val: int = Field(gt=0)
    test: int = Field(gt=0)
    source: str


Part = Literal["cells", "steps", "sampling", "datasets"]
_ENTRY: dict[str, type[_Measured]] = {"cells": CellCost, "steps": StepCost, "sampling": SamplingCost,
                                      "datasets": DatasetSize}


class CostTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cells: list[CellCost] = []
    steps: list[StepCost] = []
    sampling: list[SamplingCost] = []
    datasets: list[DatasetSize] = []

    @classmethod
    def read(cls, path: Path = TABLE) -> CostTable:
        try:
            return cls.model_validate_json(path.read_bytes())
        except OSError as error:
            raise ConfigError(f"cannot read the cost table {path}: {error.strerror or error}") from None
        except ValidationError as error:
            first = error.errors()[0]
            raise ConfigError(f"the cost table {path} is malformed: field {'.'.join(map(str, first['loc']))}: "
                              f"{first['msg']}") from None

    def write(self, path: Path = TABLE) -> None:
        path.write_text(self.model_dump_json(indent=1) + "\n")

    def replaced(self, part: Part, entries: list[dict[str, Any]]) -> CostTable:
        """The table with `entries` in `part`, each replacing the entry of its identity measured before."""
        new = [_ENTRY[part].model_validate(entry) for entry in entries]
        kept = [old for old in getattr(self, part) if old.identity() not in {e.identity() for e in new}]
        return self.model_copy(update={part: sorted([*kept, *new], key=lambda e: e.identity())})

    def dataset(self, task: str) -> DatasetSize | None:
        return next((d for d in self.datasets if d.task == task), None)


@dataclass(frozen=True)
class Price:
    """CPU seconds of one unit of work, and how they were found (for the reader of the estimate)."""

    seconds: float
    basis: str


@dataclass(frozen=True)
class CellWork:
    """What one downstream cell of a task and regime does, in images: fixed by the recipe and the splits."""

    task: str
    regime: str
    train_steps: int
    batch_size: int
    inference_images: int
    """Forward passes without gradients: val and test predictions, and the real training images where the recipe
    recomputes BatchNorm statistics on them."""


def cell_work(task: str, regime: str, recipe: dict[str, Any], *, n_train: int, n_val: int, n_test: int) -> CellWork:
    """The work of one cell of `task` under `recipe` (`Task.recipe()`), whose split sizes are given."""
    schedule = recipe["schedule"]
    batch_norm = n_train if "batch_norm" in recipe else 0
    return CellWork(task, regime, schedule["steps"], schedule["batch_size"], n_val + n_test + batch_norm)


def cell_price(table: CostTable, work: CellWork, device: str) -> Price | None:
    """A measured cell of the task and regime on the device; else the per-image figures times the cell's work;
    else None (not measured)."""
    cell = next((c for c in table.cells if (c.task, c.regime, c.device) == (work.task, work.regime, device)), None)
    if cell is not None:
        return Price(cell.cpu_seconds, f"measured cell ({cell.date})")
    step = next((s for s in table.steps if (s.task, s.device) == (work.task, device)), None)
    if step is None:
        return None
    images = work.train_steps * work.batch_size
    seconds = images * step.train_seconds_per_image + work.inference_images * step.infer_seconds_per_image
    return Price(seconds, f"{images:,} training + {work.inference_images:,} inference images x measured per-image "
                          f"cost ({step.date})")


def sampling_price(table: CostTable, generator: str, task: str, n_images: int, device: str) -> Price | None:
    """`n_images` of the generator's synthetic images on the task, or None where not measured."""
    found = next((s for s in table.sampling if (s.generator, s.task, s.device) == (generator, task, device)), None)
    if found is None:
        return None
    return Price(n_images * found.cpu_seconds_per_image, f"{n_images:,} images x measured per-image cost "
                                                         f"({found.date})")
