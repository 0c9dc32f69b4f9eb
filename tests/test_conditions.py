"""Conditions are a tagged union that survives a JSON round trip, masks included."""

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from cxrbench.conditions import Condition, LabelCondition, MaskCondition, TextCondition

adapter = TypeAdapter(list[Condition])


def test_round_trip_keeps_kind_and_mask():
    mask = np.zeros((5, 7), bool)
    mask[1:3, 2:6] = True
    conditions = [LabelCondition(labels={"a": 1}), TextCondition(labels={"a": 0}, prompt="normal chest"),
                  MaskCondition(labels={"ptx": 1}, mask=mask, source_id="P1_S1", transform={"scale": 1.1})]
    back = adapter.validate_json(adapter.dump_json(conditions))
    assert [type(c) for c in back] == [LabelCondition, TextCondition, MaskCondition]
    assert np.array_equal(back[2].mask, mask) and back[2].mask.dtype == bool
    assert back[1].prompt == "normal chest"


def test_unknown_kind_and_bad_mask_are_rejected():
    with pytest.raises(ValidationError, match="'sketch' found using 'kind'"):
        adapter.validate_python([{"kind": "sketch", "labels": {}}])
    with pytest.raises(ValidationError, match=r"mask bits hold 8 pixels, shape \(4, 4\) needs 16"):
        adapter.validate_python([{"kind": "mask", "labels": {}, "source_id": "x",
                                  "mask": {"shape": [4, 4], "bits": "AA=="}}])
    with pytest.raises(ValidationError, match=r"a mask must be 2-D \(H, W\), got shape \(4,\)"):
        MaskCondition(labels={}, mask=np.zeros(4, bool), source_id="x")
