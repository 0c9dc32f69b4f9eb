"""Any diffusers text-to-image pipeline from a local folder, prompted with the task's conditions.

For a generator someone already trained (say a chest X-ray fine-tune of Stable Diffusion that a user
downloaded): `--generator pretrained_pipeline --generator-config cfg.yaml` with
`pretrained_pipeline: {path: /models/my-cxr-pipeline}`. Nothing is fetched from a hub: the folder must
hold the pipeline as written by `save_pretrained`. Its RGB output becomes the benchmark's single
channel by ITU-R BT.601 luma (what PIL's "L" mode uses) and is resized to the task's resolution.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from cxrbench.conditions import Condition, MaskCondition
from cxrbench.errors import GeneratorError
from cxrbench.generator import Generator
from cxrbench.options import GeneratorOptions
from cxrbench.schemas import GeneratorMeta, TaskMeta

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt")


class PipelineOptions(GeneratorOptions):
    path: Path = Field(description="a local folder written by a diffusers pipeline's save_pretrained (pass it with "
                                   "--generator-config)")
    steps: int = Field(25, ge=1, le=10_000, description="Inference steps per image.")
    guidance_scale: float = Field(7.5, ge=0, le=100, description="Classifier-free guidance scale.")


class PretrainedPipeline(Generator):
    Options = PipelineOptions
    options: PipelineOptions
    meta = GeneratorMeta(
        name="pretrained_pipeline", version="1", role="generator", conditioning=["label", "text"],
        description="A diffusers text-to-image pipeline loaded from a local folder (path option), prompted "
                    "with the task's label prompts; RGB output converted to grey.")

    def __init__(self, task: TaskMeta, **config: Any) -> None:
        super().__init__(task, **config)
        self.path = self.options.path.expanduser()
        if not (self.path / "model_index.json").is_file():
            raise GeneratorError(f"pretrained pipeline folder {self.path} has no model_index.json: download the "
                                 "pipeline there first (nothing is fetched at run time)")
        self.steps = self.options.steps
        self.guidance_scale = self.options.guidance_scale
        self.mark_fitted(weights_digest(self.path))
        self._pipeline = None

    def generate(self, conditions: list[Condition], *, seed: int, batch_size: int = 64) -> np.ndarray:
        import torch

        from .prompts import prompt_of

        if any(isinstance(c, MaskCondition) for c in conditions):
            raise GeneratorError("pretrained_pipeline takes label or text conditions, not masks")
        pipeline = self._load()
        images = []
        for start in range(0, len(conditions), batch_size):
            batch = conditions[start:start + batch_size]
            generators = [torch.Generator(self.device).manual_seed(seed * 1_000_003 + start + i)
                          for i in range(len(batch))]
            rgb = pipeline(prompt=[prompt_of(c) for c in batch], num_inference_steps=self.steps,
                           guidance_scale=self.guidance_scale, generator=generators, output_type="np").images
            images.append(to_grey(np.asarray(rgb, dtype=np.float32), self.task.resolution))
        return np.concatenate(images) if images else np.zeros((0, self.task.resolution, self.task.resolution),
                                                              np.float32)

    def _load(self):
        if self._pipeline is None:
            from diffusers import DiffusionPipeline

            self._pipeline = DiffusionPipeline.from_pretrained(self.path, local_files_only=True).to(self.device)
            self._pipeline.set_progress_bar_config(disable=True)
        return self._pipeline


def to_grey(rgb: np.ndarray, resolution: int) -> np.ndarray:
    """(N, H, W, 3) in [0, 1] -> (N, resolution, resolution) luma, area-resized, in [0, 1]."""
    import torch
    import torch.nn.functional as F

    grey = torch.from_numpy(np.ascontiguousarray(rgb @ LUMA))[:, None]
    if grey.shape[-1] != resolution or grey.shape[-2] != resolution:
        grey = F.interpolate(grey, size=(resolution, resolution), mode="area")
    return grey[:, 0].clamp(0, 1).numpy()


def weights_digest(path: Path) -> str:
    """sha256 over the pipeline's weight files (names and bytes): the revision changes when the weights do."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.suffix in WEIGHT_SUFFIXES):
        digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
