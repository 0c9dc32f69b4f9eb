"""Feature arrays kept in the stage cache (`features`), so that each image set is embedded once per extractor.

A key holds the extractor's identity (its weights' hash among it), the caller's key for the images (a data key and
split, a synthetic set's key) with their shape, and the batch size, which is fixed: it can change the last bits of
the features (docs/fidelity.md), and one set's features must be the same bits whoever computed them first.
"""

from __future__ import annotations

import numpy as np

from .cache import Cache
from .fidelity.extractor import FeatureExtractor
from .plan import stage_key

FEATURES_STAGE = "features"
FEATURES_FILE = "features.npy"
FEATURE_BATCH_SIZE = 64


def features_key(extractor: FeatureExtractor, images: np.ndarray, source_key: str) -> str:
    return stage_key(FEATURES_STAGE, {"extractor": extractor.identity, "source": source_key,
                                      "shape": list(np.shape(images)), "batch_size": FEATURE_BATCH_SIZE})


def cached_features(extractor: FeatureExtractor, images: np.ndarray, *, source_key: str, cache: Cache) -> np.ndarray:
    """The extractor's features (N, D) of `images`, which `source_key` names: embedded where the cache lacks them,
    and always read back from the cache, so fresh and cached features are the same array."""
    key = features_key(extractor, images, source_key)
    if not cache.is_complete(FEATURES_STAGE, key):
        features = extractor.embed(images, batch_size=FEATURE_BATCH_SIZE)
        with cache.writing(FEATURES_STAGE, key, {"extractor": extractor.identity, "source": source_key}) as out:
            np.save(out / FEATURES_FILE, features, allow_pickle=False)
    return np.load(cache.path(FEATURES_STAGE, key) / FEATURES_FILE, allow_pickle=False)
