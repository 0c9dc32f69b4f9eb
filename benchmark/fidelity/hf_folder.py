"""Any Hugging Face vision model saved in a local folder as a feature extractor (e.g. a chest X-ray foundation
model): transformers' `AutoModel` and `AutoImageProcessor`, from the folder only (`local_files_only`), and never
the folder's own code (`trust_remote_code=False`).

A greyscale image is given to the processor as an 8-bit RGB image would be ([0, 255], three equal channels), so the
processor's own rescaling, resizing and normalisation apply as the model was trained with them. The features are
the model's `pooler_output`, or where it has none the first (CLS) token of `last_hidden_state`.

The identity's hash covers the folder's weight files and the two configs that decide how they are used: every
such file's name and contents, in sorted order.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..untrusted import irregular_paths
from .extractor import FeatureExtractor
from .identity import ExtractorIdentity

CONFIG = "config.json"
PROCESSOR_CONFIG = "preprocessor_config.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack")


class HfFolderExtractor(FeatureExtractor):
    def __init__(self, folder: Path, *, device: str) -> None:
        from transformers import AutoImageProcessor, AutoModel

        digest = folder_sha256(checked_folder(folder))
        try:
            self.processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
            self.model = AutoModel.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
        except Exception as error:  # noqa: BLE001 - whatever a malformed file makes a loader raise is bad input
            raise ConfigError(f"Hugging Face model folder {folder}: transformers cannot load it: "
                              f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
        self.model.to(device).eval()
        self.device, self.folder = device, folder
        probe = np.zeros((1, 8, 8), np.float32)
        self.identity = ExtractorIdentity(name=f"hf:{folder.name}", kind=f"{self.model.config.model_type} pooled",
                                          weights_sha256=digest, dim=self._embed_batch(probe).shape[1],
                                          input_size=tuple(self._pixels(probe).shape[-2:]))

    def _pixels(self, images: np.ndarray):
        """The processor's `pixel_values` for greyscale images in [0, 1], given as 8-bit RGB would be."""
        rgb = [np.repeat(image[..., None] * 255, 3, axis=-1) for image in images]
        return self.processor(images=rgb, return_tensors="pt", input_data_format="channels_last")["pixel_values"]

    def _embed_batch(self, images: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            output = self.model(pixel_values=self._pixels(images).to(self.device))
        pooled = getattr(output, "pooler_output", None)
        if pooled is None:
            hidden = getattr(output, "last_hidden_state", None)
            if hidden is None or hidden.ndim != 3:
                raise ConfigError(f"Hugging Face model folder {self.folder}: its output has neither pooler_output "
                                  f"nor a token sequence (last_hidden_state) to take the CLS token of")
            pooled = hidden[:, 0]
        return pooled.reshape(len(images), -1).float().cpu().numpy()


def checked_folder(folder: Path) -> Path:
    """`folder`, refused unless it is a real folder (no links anywhere in it) holding the configs and weights."""
    if folder.is_symlink() or not folder.is_dir():
        raise ConfigError(f"Hugging Face model folder {folder}: "
                          f"{'is a symbolic link' if folder.is_symlink() else 'no such folder'}")
    irregular = irregular_paths(folder)
    if irregular:
        path, why = irregular[0]
        raise ConfigError(f"Hugging Face model folder {folder}: {path.relative_to(folder)} {why}")
    for name in (CONFIG, PROCESSOR_CONFIG):
        if not (folder / name).is_file():
            raise ConfigError(f"Hugging Face model folder {folder}: no {name} (save the model and its image "
                              f"processor with save_pretrained)")
    if not weight_files(folder):
        raise ConfigError(f"Hugging Face model folder {folder}: no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    return folder


def weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def folder_sha256(folder: Path) -> str:
    """sha256 over the weight files and the two configs: each file's relative name and contents, names sorted."""
    digest = hashlib.sha256()
    for path in sorted([*weight_files(folder), folder / CONFIG, folder / PROCESSOR_CONFIG]):
        name = path.relative_to(folder).as_posix().encode()
        digest.update(len(name).to_bytes(8, "big") + name + path.stat().st_size.to_bytes(8, "big"))
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
