"""A patient verifier: do two chest X-rays show the same patient? (Packhäuser et al. 2022, a siamese network.)

cxrbench trains its own on the task's real training split (nothing is downloaded), with the reserved seed
`REID_SEED`, and keeps its weights in the cache's `verifier` stage, so that scoring another generator, or the same
one again, trains nothing. A shared trunk maps each image to an embedding; a head scores a pair from |e₁ − e₂| and
e₁ · e₂ (symmetric in the two images) as a same-patient logit.

Its training pairs and the test pairs its quality is measured on (`fidelity.reidentification.verifier_quality`) are
drawn by one rule (`fidelity.patient_pairs.verification_pairs`).

The trunk has the layout of the embedded recipe's `small_cnn` (tasks/downstream/classifier.py), which the core
may not import (tasks are reached through the registry only), ending in a 4 × 4 pooled map instead of one average:
a patient is told apart by where their anatomy lies as much as by what it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .cache import Cache
from .determinism import deterministic_cell, one_thread
from .errors import DataError
from .fidelity.patient_pairs import VerifierSettings, checked_images, verification_pairs
from .plan import stage_key
from .protocol import REID_SEED
from .samples import SampleSet

VERIFIER_FILE = "verifier.safetensors"
_POOLED = 4
"""The trunk's output map is pooled to _POOLED × _POOLED cells whatever the image size."""


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
