"""Which feature extractor fidelity and memorisation are measured in, chosen by a spec string:

- `in_domain` (the default): the task's own downstream recipe trained on the real training split
  (`in_domain.InDomainEncoder`); always available;
- `xrv:<path>`: torchxrayvision's DenseNet-121 from a local state dict (`xrv_densenet.XrvDenseNetExtractor`);
- `hf:<folder>`: a Hugging Face vision model saved in a local folder (`hf_folder.HfFolderExtractor`).

Nothing is downloaded. Each extractor carries an `ExtractorIdentity`; numbers from different identities are
different measurements and never share a column.
"""

from __future__ import annotations

from pathlib import Path

from ..cache import Cache
from ..errors import ConfigError
from ..samples import Splits
from ..task import Task
from .extractor_base import ExtractorIdentity, FeatureExtractor
from .hf_folder import HfFolderExtractor
from .in_domain import in_domain_encoder
from .xrv_densenet import XrvDenseNetExtractor

__all__ = ["ExtractorIdentity", "FeatureExtractor", "extractor_from_spec"]

DEFAULT_SPEC = "in_domain"


def extractor_from_spec(spec: str, *, task: Task, real: Splits, data_key: str, cache: Cache,
                        device: str) -> FeatureExtractor:
    """The extractor `spec` names (see the module's docstring); `task`, `real`, `data_key` and `cache` serve the
    in-domain encoder, which trains where the cache lacks it."""
    kind, _, location = spec.partition(":")
    if spec == DEFAULT_SPEC:
        return in_domain_encoder(task, real, data_key, cache, device=device)
    if kind == "xrv" and location:
        return XrvDenseNetExtractor(Path(location), device=device)
    if kind == "hf" and location:
        return HfFolderExtractor(Path(location), device=device)
    raise ConfigError(f"feature extractor {spec!r}: expected 'in_domain', 'xrv:<path to a torchxrayvision DenseNet "
                      f"state dict>' or 'hf:<local Hugging Face model folder>'")
