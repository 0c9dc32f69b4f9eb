"""The quality numbers of a result for people: one compact row per synthetic arm, for the terminal and Markdown.

A share of images closer to the training set than real test images (memorisation, re-identification) is marked `*`
when its one-sided p against the rate real test images have by construction (about 5%) is below 0.05. A condition
group is named beside an arm when its FID is more than `WORSE_GROUP` times the whole set's: a generator that fails
on one finding hides there. Groups are smaller than the whole set, which raises FID a little by itself (its bias
falls as 1/n), hence a wide factor.
"""

from __future__ import annotations

from .fidelity.assessment import ArmQuality
from .schemas import TaskResult

QUALITY_TITLE = "fidelity and privacy"
QUALITY_COLUMNS = ["generator", "FID [95% CI]", "KID", "precision", "recall", "density", "coverage",
                   "closer than test (features)", "(pixels)", "re-id share", "groups FID > 2x"]
WORSE_GROUP = 2.0
SIGNIFICANT = 0.05


def _share(value: float, p: float) -> str:
    return f"{value:.0%}{'*' if p < SIGNIFICANT else ''}"


def worse_groups(quality: ArmQuality) -> str:
    """The condition groups whose FID is more than WORSE_GROUP times the whole set's, worst first."""
    whole = quality.fidelity.fid.value
    worse = sorted(((group.result.fid.value, name) for name, group in quality.fidelity_by_group.items()
                    if group.result is not None and group.result.fid.value > WORSE_GROUP * whole), reverse=True)
    return ", ".join(f"{name} {fid:.1f}" for fid, name in worse)


def quality_row(quality: ArmQuality) -> list[str]:
    f, memorised, reid = quality.fidelity, quality.memorisation, quality.reidentification
    return [quality.generator, f"{f.fid.value:.2f} [{f.fid.ci_low:.2f}, {f.fid.ci_high:.2f}]",
            f"{f.kid.value:.4f}", *(f"{getattr(f, name).value:.2f}" for name in ("precision", "recall", "density",
                                                                                  "coverage")),
            *("n/a" if space not in memorised else _share(memorised[space].share_below.value, memorised[space].p_value)
              for space in ("features", "pixels")),
            "n/a" if reid is None else _share(reid.share_above.value, reid.p_value), worse_groups(quality)]


def quality_title(task: TaskResult) -> str:
    """The task, regime and what the rows were measured against and in."""
    first = task.quality[0]
    return (f"{task.task.name} · {task.regime} · {QUALITY_TITLE}: {first.n_synthetic} synthetic (seed {first.seed}, "
            f"ratio {first.ratio:g}) vs {first.n_real_test} real test, {first.n_real_train} real train; "
            f"features {first.extractor.name} {first.extractor.weights_sha256[:12]}")


QUALITY_NOTE = ("fidelity against the real test images; closer than test: share of synthetic images nearer a real "
                "training image than the 5% nearest real test images (* one-sided p < 0.05 against that rate); re-id "
                "share: the same for the patient verifier's same-patient call")
