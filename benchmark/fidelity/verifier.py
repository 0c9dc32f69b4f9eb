"""A patient verifier: do two chest X-rays show the same patient? (Packhäuser et al. 2022, a siamese network.)

cxrbench trains its own on the task's real training split (nothing is downloaded), with the reserved seed
`REID_SEED`, and keeps its weights in the cache's `verifier` stage, so that scoring another generator, or the same
one again, trains nothing. A shared trunk maps each image to an embedding; a head scores a pair from |e₁ − e₂| and
e₁ · e₂ (symmetric in the two images) as a same-patient logit.

Its training pairs (`verification_pairs`) are drawn here too, and the same rule draws the test pairs its quality
is measured on (`reidentification.verifier_quality`).

The trunk has the layout of the embedded recipe's `small_cnn` (tasks/downstream/classifier.py), which the core
may not import (tasks are reached through the registry only), ending in a 4 × 4 pooled map instead of one average:
a patient is told apart by where their anatomy lies as much as by what it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..cache import Cache
from ..determinism import deterministic_cell, one_thread
from ..errors import ConfigError, DataError
from ..plan import stage_key
from ..protocol import REID_SEED
from ..samples import SampleSet

VERIFIER_FILE = "verifier.safetensors"
_POOLED = 4
"""The trunk's output map is pooled to _POOLED × _POOLED cells whatever the image size."""


def verification_pairs(patient_ids: np.ndarray, *, seed: int, n_pairs: int,
                       name: str = "patient ids") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n_pairs` pairs of rows, half of them two different studies of one patient (a patient with two or more drawn
    uniformly, then two of its studies), half studies of two different patients (two patients drawn uniformly, then a
    study of each), in a seeded random order: (first rows, second rows, same-patient flags). A row is never paired
    with itself; pairs repeat when there are fewer distinct ones than asked for."""
    if n_pairs < 2 or n_pairs % 2:
        raise ConfigError(f"n_pairs: expected an even number of pairs >= 2 (half same-patient), got {n_pairs}")
    patients, inverse, counts = np.unique(np.asarray(patient_ids).astype(str), return_inverse=True,
                                          return_counts=True)
    multi = np.flatnonzero(counts >= 2)
    if len(multi) < 2:
        raise DataError(f"{name}: {len(multi)} patient(s) with two or more studies among {len(patients)}; "
                        f"same-patient pairs need at least 2 such patients")
    by_patient = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rng = np.random.default_rng(seed)
    half = n_pairs // 2

    def study_of(patient: np.ndarray, offset: np.ndarray) -> np.ndarray:
        return by_patient[starts[patient] + offset]

    same_patient = multi[rng.integers(len(multi), size=half)]
    first_study = rng.integers(counts[same_patient])
    second_study = (first_study + 1 + rng.integers(counts[same_patient] - 1)) % counts[same_patient]
    patient = rng.integers(len(patients), size=half)
    other = (patient + 1 + rng.integers(len(patients) - 1, size=half)) % len(patients)
    first = np.concatenate([study_of(same_patient, first_study), study_of(patient, rng.integers(counts[patient]))])
    second = np.concatenate([study_of(same_patient, second_study), study_of(other, rng.integers(counts[other]))])
    same = np.repeat([True, False], half)
    order = rng.permutation(n_pairs)
    return first[order], second[order], same[order]


def checked_images(images: np.ndarray, name: str) -> np.ndarray:
    """`images` as a finite (N, H, W) array with N ≥ 1 and pixels in [0, 1] (a task's images, what the verifier
    learnt from; 0-255 pixels would be another world to it), or a DataError naming `name`."""
    array = np.asarray(images)
    if array.ndim != 3 or 0 in array.shape or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{name}: expected images as a numeric (N, H, W) array with N >= 1, got shape {array.shape} "
                        f"and dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise DataError(f"{name}: holds NaN or infinite pixels")
    if array.min() < 0 or array.max() > 1:
        raise DataError(f"{name}: expected pixel values in [0, 1] (the task's images), got {array.min():g} to "
                        f"{array.max():g}")
    return array


class VerifierSettings(BaseModel):
    """How long and how the verifier trains: part of its cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(800, ge=1, description="AdamW steps; each draws `batch_size` fresh pairs.")
    batch_size: int = Field(32, ge=2, multiple_of=2, description="Pairs per step (an even number: half of all "
                                                                  "training pairs are same-patient).")
    learning_rate: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    embedding: int = Field(64, ge=1, description="Length of an image's embedding.")


TINY_VERIFIER = VerifierSettings(steps=150, batch_size=16)
"""For tests: seconds on one CPU thread at 64 px, still well above chance on the phantom patients."""


@dataclass(frozen=True)
class Verifier:
    """A trained verifier, what it was trained with, and how many training pairs it saw."""

    network: Any
    settings: VerifierSettings
    seed: int
    n_training_pairs: int

    def embed(self, images: np.ndarray, *, batch_size: int = 256) -> Any:
        """Each image's embedding (a torch tensor, rows in order), on one thread."""
        import torch

        trunk = self.network["trunk"].eval()
        device = next(trunk.parameters()).device
        with one_thread(), torch.inference_mode():
            return torch.cat([trunk(torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size, None],
                                                                          dtype=np.float32)).to(device))
                              for start in range(0, len(images), batch_size)])

    def logits(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The same-patient logit of each (first[i], second[i]) pair of images (N, H, W), as float64."""
        return self._scored(self.embed(first), self.embed(second))

    def pair_logits(self, images: np.ndarray, first_rows: np.ndarray, second_rows: np.ndarray) -> np.ndarray:
        """The same-patient logit of each pair of rows of `images`, each image embedded once (pairs outnumber
        images, and gathering their pixels would take as many copies)."""
        embedded = self.embed(images)
        return self._scored(embedded[first_rows], embedded[second_rows])

    def _scored(self, first, second) -> np.ndarray:
        import torch

        head = self.network["head"].eval()
        with one_thread(), torch.inference_mode():
            return _head_logits(head, first, second).double().cpu().numpy()


def build_network(embedding: int):
    """The trunk (image → embedding) and the head (pair of embeddings → logit), as one module for its weights."""
    import torch.nn as nn

    def block(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    trunk = nn.Sequential(*block(1, 16, stride=2), *block(16, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2),
                          *block(64, 64), nn.AdaptiveAvgPool2d(_POOLED), nn.Flatten(),
                          nn.Linear(64 * _POOLED**2, embedding))
    head = nn.Sequential(nn.Linear(2 * embedding, 64), nn.ReLU(), nn.Linear(64, 1))
    return nn.ModuleDict({"trunk": trunk, "head": head})


def _head_logits(head, first, second):
    import torch

    return head(torch.cat([(first - second).abs(), first * second], dim=1))[:, 0]


def train_verifier(images: np.ndarray, patient_ids: np.ndarray, settings: VerifierSettings, *, seed: int,
                   device: str) -> Verifier:
    """The verifier trained with binary cross-entropy on same/different-patient pairs of `images`.

    Its own loop rather than the recipes' `fit`, which shuffles a fixed array of inputs: pairs grow as the square
    of the images, so they are drawn as row indices up front (`verification_pairs`, seeded; fresh pairs every
    step) and their images gathered per batch."""
    import torch

    images = checked_images(images, "training images")
    if len(patient_ids) != len(images):
        raise DataError(f"training images: {len(images)} images but {len(patient_ids)} patient ids")
    first, second, same = verification_pairs(patient_ids, seed=seed, n_pairs=settings.steps * settings.batch_size,
                                             name="training images")
    pixels = torch.from_numpy(np.ascontiguousarray(images[:, None], dtype=np.float32))
    targets = torch.from_numpy(same.astype(np.float32))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    with deterministic_cell(seed):
        network = build_network(settings.embedding).to(device).train()
        optimiser = torch.optim.AdamW(network.parameters(), lr=settings.learning_rate,
                                      weight_decay=settings.weight_decay)
        for step in range(settings.steps):
            rows = slice(step * settings.batch_size, (step + 1) * settings.batch_size)
            both = network["trunk"](torch.cat([pixels[first[rows]], pixels[second[rows]]]).to(device))
            embedded_first, embedded_second = both.chunk(2)
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(_head_logits(network["head"], embedded_first, embedded_second), targets[rows].to(device))
            loss.backward()
            optimiser.step()
    return Verifier(network.eval(), settings, seed, n_training_pairs=len(same))


def cached_verifier(train: SampleSet, data_key: str, cache: Cache, *, settings: VerifierSettings | None = None,
                    device: str = "cpu") -> Verifier:
    """The verifier of the real training split `train` (whose data key is `data_key`) with the reserved seed:
    trained once per (data, settings) and kept in the cache's `verifier` stage as its weights."""
    from safetensors.torch import load_file, save_file

    settings = settings or VerifierSettings()
    key = stage_key("verifier", {"data": data_key, "settings": settings.model_dump(), "seed": REID_SEED})
    if not cache.is_complete("verifier", key):
        verifier = train_verifier(train.images, train.patient_ids, settings, seed=REID_SEED, device=device)
        with cache.writing("verifier", key, {"seed": REID_SEED, "settings": settings.model_dump()}) as out:
            save_file({k: v.detach().cpu().contiguous() for k, v in verifier.network.state_dict().items()},
                      out / VERIFIER_FILE)
    network = build_network(settings.embedding)
    network.load_state_dict(load_file(cache.path("verifier", key) / VERIFIER_FILE))
    return Verifier(network.to(device).eval(), settings, REID_SEED,
                    n_training_pairs=settings.steps * settings.batch_size)
