"""The controls' verdicts at the protocol's settings, on whatever machine runs the tests (CI: a fresh one).

A benchmark must show it can see a real gain, and that it does not invent one, on every machine of
its kind: the oracle (new draws from the true renderer) helps both embedded tasks in both regimes,
and noise never helps. Protocol 1's segmentation control passed on one machine and failed on another.
"""

import os

import pytest

from cxrbench.registry import suite_tasks
from cxrbench.runner import run
from cxrbench.schemas import RunConfig


@pytest.mark.slow
def test_the_oracle_helps_and_noise_does_not_in_every_embedded_task_and_regime(tmp_path):
    config = RunConfig(tasks=suite_tasks("embedded"), generators=["oracle", "noise"], quality=False)
    result = run(config, tmp_path, workers=os.cpu_count() or 1, show_progress=False)
    assert not result.incomplete
    verdicts = {(t.task.name, t.regime, c.generator): (c.verdict, round(c.delta, 3), round(c.p_holm, 4))
                for t in result.tasks for c in t.comparisons}
    assert len(verdicts) == 8, verdicts
    for (_, _, generator), (verdict, _, _) in verdicts.items():
        assert verdict == "helps" if generator == "oracle" else verdict != "helps", verdicts
