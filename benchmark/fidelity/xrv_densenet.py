"""torchxrayvision's DenseNet-121 as a feature extractor, from a state dict on local disk (never downloaded).

A chest X-ray network trained on public corpora gives features that do not depend on the task's data: numbers from
it can be compared across tasks and with the literature. Its input follows torchxrayvision's conventions: one
channel, 224 x 224 pixels, values in [-1024, 1024] (`xrv.datasets.normalize`); the features are its pooled
`features2` vector (1024-d), what its classifier reads.

The file must hold a state dict (`torch.save(model.state_dict(), path)`, or safetensors): torchxrayvision's
published files are whole pickled models, which can run any code when loaded and are refused; convert one once with
`torch.save(xrv.models.DenseNet(weights=...).state_dict(), path)`. The identity's hash is the file's sha256,
computed over the very bytes that are loaded.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..untrusted import read_bounded
from .extractor import FeatureExtractor
from .identity import ExtractorIdentity

INPUT_SIZE = (224, 224)
MAX_WEIGHTS_BYTES = 2**30
"""A DenseNet-121 state dict is about 28 MB; a larger file is not one."""
HEAD_KEYS = frozenset({"classifier.weight", "classifier.bias", "op_threshs"})
"""Keys of a torchxrayvision DenseNet beside its `features`: its classifier (whatever its label count), unused here."""


class XrvDenseNetExtractor(FeatureExtractor):
    def __init__(self, path: Path, *, device: str) -> None:
        import torchxrayvision as xrv

        data = _weights_bytes(path)
        self.model = xrv.models.DenseNet(weights=None, in_channels=1)
        _load_features(self.model, _state_dict(data, path), path)
        self.model.to(device).eval()
        self.device = device
        self.identity = ExtractorIdentity(name="xrv_densenet", kind="torchxrayvision DenseNet-121 features2",
                                          weights_sha256=hashlib.sha256(data).hexdigest(), dim=1024,
                                          input_size=INPUT_SIZE)

    def _embed_batch(self, images: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F
        import torchxrayvision as xrv

        scaled = xrv.datasets.normalize(images, maxval=1, reshape=False)  # [0, 1] -> [-1024, 1024]
        batch = torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32))[:, None]
        batch = F.interpolate(batch, size=INPUT_SIZE, mode="bilinear", align_corners=False, antialias=True)
        return self.model.features2(batch.to(self.device)).float().cpu().numpy()


def _weights_bytes(path: Path) -> bytes:
    """The file's bytes: a regular file, not a link, of at most MAX_WEIGHTS_BYTES."""
    try:
        return read_bounded(path, MAX_WEIGHTS_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"xrv DenseNet weights {path}: no such file") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"xrv DenseNet weights {path}: {error}") from None


def _state_dict(data: bytes, path: Path) -> dict:
    """The tensors in `data` (safetensors, or a torch file read with weights_only: no pickled code runs)."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load

            state = load(data)
        else:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - whatever a malformed file makes the parser raise is bad input
        raise ConfigError(f"xrv DenseNet weights {path}: not a state dict that torch reads with weights_only "
                          f"(a pickled whole model is refused: save its state_dict()): "
                          f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    if not (isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise ConfigError(f"xrv DenseNet weights {path}: expected a state dict (names to tensors), got a "
                          f"{type(state).__name__}")
    return state


def _load_features(model, state: dict, path: Path) -> None:
    """`state`'s `features.*` tensors into `model.features`, refused unless they are exactly that architecture's."""
    expected = {f"features.{k}": tuple(v.shape) for k, v in model.features.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected) - HEAD_KEYS)
    reshaped = [f"{k} has shape {tuple(state[k].shape)}, expected {shape}" for k, shape in expected.items()
                if k in state and tuple(state[k].shape) != shape]
    problems = ([f"missing {', '.join(missing[:3])}"] if missing else []) + \
               ([f"unexpected {', '.join(unexpected[:3])}"] if unexpected else []) + reshaped[:3]
    if problems:
        raise ConfigError(f"xrv DenseNet weights {path}: not a state dict of torchxrayvision's one-channel "
                          f"DenseNet-121: {'; '.join(problems)}")
    model.features.load_state_dict({k.removeprefix("features."): state[k] for k in expected}, strict=True)
