"""What a task asks a generator for: a tagged union of label, text and mask conditions.

Conditions are pydantic models so the manifest of a synthetic set records exactly what was asked.
Masks travel as bit-packed base64 so a manifest stays small and readable as JSON.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator


def _encode_mask(mask: np.ndarray) -> dict:
    mask = np.asarray(mask, dtype=bool)
    packed = np.packbits(mask.ravel())
    return {"shape": list(mask.shape), "bits": base64.b64encode(packed.tobytes()).decode("ascii")}


def _decode_mask(value: object) -> np.ndarray:
    if isinstance(value, np.ndarray):
        if value.ndim != 2:
            raise ValueError(f"a mask must be 2-D (H, W), got shape {value.shape}")
        return value.astype(bool, copy=False)
    if isinstance(value, dict) and {"shape", "bits"} <= value.keys():
        shape = tuple(int(s) for s in value["shape"])
        bits = np.frombuffer(base64.b64decode(value["bits"]), dtype=np.uint8)
        size = int(np.prod(shape))
        if bits.size != (size + 7) // 8:
            raise ValueError(f"mask bits hold {bits.size * 8} pixels, shape {shape} needs {size}")
        return np.unpackbits(bits)[:size].reshape(shape).astype(bool)
    raise ValueError("a mask must be a 2-D numpy array or {'shape': [H, W], 'bits': base64}")


MaskArray = Annotated[np.ndarray, PlainValidator(_decode_mask), PlainSerializer(_encode_mask)]


class _Condition(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    labels: dict[str, int] = Field(
        description="The task's labels this synthetic image must carry (0/1); the downstream target."
    )


class LabelCondition(_Condition):
    kind: Literal["label"] = "label"


class TextCondition(_Condition):
    kind: Literal["text"] = "text"
    prompt: str


class MaskCondition(_Condition):
    """A geometrically transformed real mask; the transformed mask is the synthetic image's label."""

    kind: Literal["mask"] = "mask"
    mask: MaskArray
    source_id: str = Field(description="The real training case whose mask was transformed.")
    transform: dict[str, float] = Field(
        default_factory=dict, description="Affine parameters applied to the source mask (and image)."
    )


Condition = Annotated[LabelCondition | TextCondition | MaskCondition, Field(discriminator="kind")]


class ConditionPolicy(BaseModel):
    """How a task draws its conditions. The protocol's policy is the default: whole label vectors of real training
    rows (multi-label, co-occurrence kept) and randomly transformed masks; any other is an exploratory run, as the
    paper's best practices (single-disease labels, transformed masks) are measured, never a submission."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label_conditions: Literal["multi", "single"] = Field(
        default="multi", description="multi: a training row's label vector as it is; single: at most one of its "
                                     "positive findings, chosen at random, the others set to 0.")
    mask_transforms: bool = Field(default=True, description="Whether a mask condition is a training mask under a "
                                                            "small random affine (True) or the mask as it is.")

    def changes(self) -> dict[str, object]:
        """The settings that differ from the protocol's (empty for the protocol's policy)."""
        return self.model_dump(exclude_defaults=True)

    def describe(self) -> str:
        """One line for a report, e.g. 'single-disease label conditions, masks untransformed'."""
        labels = "single-disease" if self.label_conditions == "single" else "multi-label"
        masks = "randomly transformed" if self.mask_transforms else "untransformed"
        return f"{labels} label conditions, masks {masks}"


PROTOCOL_POLICY = ConditionPolicy()
