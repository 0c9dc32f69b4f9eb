"""What a fitted LDM hands the generator that refines it (`Generator.refines` / `start_from`).

A refinement chain runs plain LDM -> round 0 -> round 1 -> ...; each link starts from this state of
the one before, so no link has to know which kind of generator it continues from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import LatentDiffusion
    from .proxy import Proxy


@dataclass
class RefinedState:
    model: LatentDiffusion
    proxy: Proxy | None = None
    """The proxy earlier rounds trained; None when starting from the plain model."""
    history: list[dict] = field(default_factory=list)
    """One record per fine-tuning round so far."""
