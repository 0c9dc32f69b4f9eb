"""What a feature extractor is: a fixed network that maps greyscale images to vectors, and the identity that says
which network it was (`identity`), so that numbers measured in different feature spaces are never compared.

The concrete extractors (`feature_extractors.InDomainEncoder`, `xrv_densenet`, `hf_folder`) import this;
`feature_extractors.extractor_from_spec` picks one of them by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..determinism import one_thread
from ..errors import DataError
from .identity import ExtractorIdentity


class FeatureExtractor(ABC):
    """A fixed network, in eval mode, that embeds images (N, H, W) in [0, 1] as float32 vectors (N, D)."""

    identity: ExtractorIdentity

    def embed(self, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Features of `images`, `batch_size` at a time, on one thread and without gradients, so that the same images
        give the same bits. The batch size can change the last bits, so cached features fix it
        (`features.FEATURE_BATCH_SIZE`)."""
        import torch

        images = checked_images(images)
        parts = []
        with one_thread(), torch.no_grad():
            for start in range(0, len(images), batch_size):
                parts.append(np.asarray(self._embed_batch(images[start : start + batch_size]), dtype=np.float32))
        features = np.concatenate(parts) if parts else np.zeros((0, self.identity.dim), np.float32)
        if features.shape != (len(images), self.identity.dim):
            raise RuntimeError(f"extractor {self.identity.name} returned features of shape {features.shape}, expected "
                               f"({len(images)}, {self.identity.dim})")
        return features

    @abstractmethod
    def _embed_batch(self, images: np.ndarray) -> np.ndarray:
        """Features (n, D) of one batch of checked images (n, H, W) float32 in [0, 1]."""


def checked_images(images: np.ndarray) -> np.ndarray:
    """`images` as float32 (N, H, W), refused unless finite and in [0, 1] (cxrbench's image convention)."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise DataError(f"feature extraction takes greyscale images (N, H, W), got shape {images.shape}")
    images = images.astype(np.float32, copy=False)
    if images.size and not (np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1):
        raise DataError("feature extraction takes images with finite values in [0, 1]; these range over "
                        f"[{np.nanmin(images):g}, {np.nanmax(images):g}]" + ("" if np.isfinite(images).all() else
                                                                           " and hold NaN or infinite values"))
    return images

