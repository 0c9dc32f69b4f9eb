"""Which feature extractor fidelity and memorisation are measured in, chosen by a spec string:

- `in_domain` (the default): the task's own downstream recipe trained on the real training split
  (`InDomainEncoder`, below); always available;
- `xrv:<path>`: torchxrayvision's DenseNet-121 from a local state dict (`fidelity.xrv_densenet`);
- `hf:<folder>`: a Hugging Face vision model saved in a local folder (`fidelity.hf_folder`).

Nothing is downloaded. Each extractor carries an `ExtractorIdentity`; numbers from different identities are
different measurements and never share a column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .cache import Cache, file_sha256
from .errors import ConfigError, DataError
from .fidelity.extractor import FeatureExtractor, checked_images
from .fidelity.hf_folder import HfFolderExtractor
from .fidelity.identity import ExtractorIdentity
from .fidelity.xrv_densenet import XrvDenseNetExtractor
from .protocol import FEATURE_SEED
from .real_trained import RealTrained, trained_on_real
from .samples import Splits
from .task import Task

DEFAULT_SPEC = "in_domain"
ENCODER_STAGE = "encoder"


class InDomainEncoder(FeatureExtractor):
    """The in-domain encoder: the task's own downstream recipe trained on the real training split, read at the layer
    before its output (`Task.embed`). Always available (it needs no downloaded weights), and it sees what the task's
    models see: the same resolution, the same findings.

    It trains with `protocol.FEATURE_SEED`, which no run, judge or proxy uses, once per (data, recipe), and is kept in
    the cache's `encoder` stage (`real_trained`). Its identity's hash is that of the cached safetensors file."""

    def __init__(self, task: Task, trained: RealTrained, *, device: str) -> None:
        self.task, self.model, self.device = task, trained.model, device
        size = task.meta.resolution
        dim = task.embed(self.model, np.zeros((1, size, size), np.float32), device=device).shape[1]
        self.identity = ExtractorIdentity(name="in_domain", kind=f"{task.meta.name} recipe {task.recipe()['model']}",
                                          weights_sha256=file_sha256(trained.weights), dim=dim,
                                          input_size=(size, size))

    def embed(self, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """As `FeatureExtractor.embed`; images must be at the task's resolution, the only one its recipe knows."""
        images = checked_images(images)
        if images.shape[1:] != self.identity.input_size:
            raise DataError(f"the in-domain encoder of task {self.task.meta.name} takes images of "
                            f"{self.identity.input_size[0]} x {self.identity.input_size[1]} pixels, got "
                            f"{images.shape[1]} x {images.shape[2]}")
        return super().embed(images, batch_size=batch_size)

    def _embed_batch(self, images: np.ndarray) -> np.ndarray:
        return self.task.embed(self.model, images, device=self.device)


def in_domain_encoder(task: Task, real: Splits, data_key: str, cache: Cache, *, device: str) -> InDomainEncoder:
    """The task's encoder for the data of `data_key`: trained on `real.train` where the cache lacks it."""
    trained = trained_on_real(task, real, data_key, cache, stage=ENCODER_STAGE, seed=FEATURE_SEED, device=device)
    return InDomainEncoder(task, trained, device=device)


def extractor_from_spec(spec: str, *, task: Task, real: Splits, data_key: str, cache: Cache,
                        device: str) -> FeatureExtractor:
    """The extractor `spec` names (see the module's docstring); `task`, `real`, `data_key` and `cache` serve the
    in-domain encoder, which trains where the cache lacks it."""
    if spec == DEFAULT_SPEC:
        return in_domain_encoder(task, real, data_key, cache, device=device)
    return local_extractor(spec, device=device)


def local_extractor(spec: str, *, device: str) -> FeatureExtractor:
    """The extractor of local weights `spec` names (`xrv:<file>`, `hf:<folder>`), loaded and checked now: a run
    calls this before its cells, so that a wrong path is refused before any work."""
    kind, _, location = spec.partition(":")
    if kind == "xrv" and location:
        return XrvDenseNetExtractor(Path(location), device=device)
    if kind == "hf" and location:
        return HfFolderExtractor(Path(location), device=device)
    raise ConfigError(f"feature extractor {spec!r}: expected 'in_domain', 'xrv:<path to a torchxrayvision DenseNet "
                      f"state dict>' or 'hf:<local Hugging Face model folder>'")
