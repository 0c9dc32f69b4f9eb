"""The baseline arm: no synthetic data at all; every other arm is compared with it.

Never instantiated: the runner trains the baseline's cells on the real images alone. The class
carries the baseline's metadata, so that listings and results describe it like every other arm.
"""

from __future__ import annotations

from cxrbench.generator import Generator
from cxrbench.schemas import GeneratorMeta


class RealOnly(Generator):
    meta = GeneratorMeta(name="real_only", version="1", role="baseline", conditioning=[],
                         description="Real training data only: the reference every arm is compared with.")
