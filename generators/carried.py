"""The images a third-party entry carries, served as a generator so CI retrains its arm with the ordinary cells.

Used by `cxrbench verify` only: its synthetic sets (`benchmark/carried.py`) are looked up by the
digest of the conditions each cell asks for, so the arm trains on exactly the pixels the submitter's
run trained on. Its revision is the file's hash and this module's code identity: another file is another arm.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from pydantic import Field

from cxrbench.cache import content_key
from cxrbench.carried import conditions_digest, read_sets
from cxrbench.code_identity import code_identity
from cxrbench.conditions import Condition
from cxrbench.errors import GeneratorError
from cxrbench.generator import Generator
from cxrbench.options import GeneratorOptions
from cxrbench.schemas import GeneratorMeta


class CarriedOptions(GeneratorOptions):
    sets: Path = Field(description="The entry's synthetic/<task file>.npz.")


class Carried(Generator):
    Options = CarriedOptions
    options: CarriedOptions
    meta = GeneratorMeta(name="carried", version="1", role="generator", conditioning=["label", "text", "mask"],
                         description="A third-party entry's own synthetic images, carried in its submission folder "
                                     "(option `sets`: the npz file); what `cxrbench verify` retrains such an arm on.")

    def _sets(self) -> dict[str, np.ndarray]:
        try:
            return read_sets(self.options.sets)
        except (OSError, ValueError) as error:
            raise GeneratorError(f"carried: {self.options.sets}: {getattr(error, 'strerror', None) or error}") \
                from None

    def generate(self, conditions: list[Condition], *, seed: int, batch_size: int = 64) -> np.ndarray:
        digest = conditions_digest(conditions)
        images = self._sets().get(digest)
        if images is None:
            raise GeneratorError(f"carried: {self.options.sets} holds no set for these {len(conditions)} "
                                 f"conditions (seed {seed}, digest {digest[:12]})")
        return images.astype(np.float32) / 65535

    def revision(self) -> str:
        """The carried file's content, not its path (the same images anywhere, another file another arm), and the
        code that serves it."""
        try:
            sets = hashlib.sha256(self.options.sets.read_bytes()).hexdigest()
        except OSError as error:
            raise GeneratorError(f"carried: {self.options.sets}: {error.strerror or error}") from None
        return content_key("generator", "1", {"sets_sha256": sets, "code": code_identity(type(self))})
