"""`cxrbench submit` for quality: what an entry stores so that CI can recompute its quality numbers.

From the run's result, the quality of the entry's arms (its generator's and its references'); from the run's cache,
each assessed set's features and, on tasks whose images may be published, its images (`assessed_sets`), and the
generator's closest-pairs figure (`closest_pairs`). Numbers CI could not recompute from what the entry stores are
left out (`assessed_sets.publishable`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .assessed_sets import FEATURES, IMAGES, array_key, assessed_path, publishable, write_assessed
from .cache import Cache, write_atomic
from .closest_pairs import figure_file, figure_pixels, figure_png
from .errors import DataError
from .fidelity.assessment import ArmQuality
from .plan import TaskPlan, first_ratio_cell
from .registry import generator_class
from .schemas import RunConfig
from .synthetic import to_uint16


@dataclass(frozen=True)
class DraftedQuality:
    quality: list[ArmQuality]
    arrays: bytes | None
    """The assessed sets' npz; None when no arm of the entry was assessed (a run with --no-quality)."""
    figure: bytes | None
    """The generator's closest-pairs figure (PNG), on tasks whose images may be published."""
    task: str
    regime: str

    def write(self, task_file: Path) -> None:
        """The npz beside `task_file`, and the figure in its gallery (an earlier entry's, if none now, removed)."""
        for path, data in ((assessed_path(task_file), self.arrays),
                           (task_file.parent / figure_file(self.task, self.regime), self.figure)):
            if data is None:
                path.unlink(missing_ok=True)
            else:
                write_atomic(path, data)


def drafted_quality(plan: TaskPlan, stored: list[ArmQuality], generator: str, config: RunConfig,
                    cache: Cache) -> DraftedQuality:
    """The quality of the plan's arms as the run measured it (`stored`), with the arrays it follows from."""
    task, regime = plan.task.meta.name, plan.regime
    chosen = [q for q in stored if q.generator in {arm.generator for arm in plan.arms}]
    if not chosen:
        return DraftedQuality([], None, None, task, regime)
    from .quality import assessed_set, task_spaces  # loads the extractors: only for a run that measured quality

    spaces = task_spaces(plan.task, config, cache)
    images = plan.task.redistributable
    arrays, published, figure = {}, [], None
    for quality in chosen:
        if quality.extractor != spaces.extractor.identity:
            raise DataError(f"the quality of {quality.generator} on {task} {regime} was measured with extractor "
                            f"{quality.extractor.name} ({quality.extractor.weights_sha256[:12]}), the cache holds "
                            f"{spaces.extractor.identity.name} ({spaces.extractor.identity.weights_sha256[:12]}); "
                            f"submit with the --cache-dir the run used")
        _, cell = first_ratio_cell(plan, quality.generator, quality.seed)
        if cell.synthetic_key != quality.synthetic_key:
            raise DataError(f"the quality of {quality.generator} on {task} {regime} assessed synthetic set "
                            f"{quality.synthetic_key[:12]}, this cxrbench plans {cell.synthetic_key[:12]}; rerun "
                            f"with this version and submit the new result")
        assessed = assessed_set(plan, cell, spaces, cache)
        arrays[array_key(quality, FEATURES)] = assessed.features
        if images:
            arrays[array_key(quality, IMAGES)] = assessed.images
        entry_quality = publishable(quality, images=images,
                                    groups=not generator_class(quality.generator).meta.needs_pool)
        published.append(entry_quality)
        pixels = entry_quality.memorisation.get("pixels")
        if quality.generator == generator and pixels is not None and pixels.closest_pairs:
            figure = figure_png(figure_pixels(to_uint16(assessed.images), plan.splits.train.images,
                                              pixels.closest_pairs))
    return DraftedQuality(published, write_assessed(arrays), figure, task, regime)
