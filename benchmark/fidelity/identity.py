"""Which network a feature vector came from: a result names it, so that numbers of two feature spaces never meet.

A model of its own, without the extractor's network code, because results (and the leaderboard that reads them)
carry it and must not import torch.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ExtractorIdentity(BaseModel):
    """Everything that decides an extractor's features: part of every cached feature array's key and of every
    result measured in them. Two results are comparable only where their identities are equal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description='"in_domain", "xrv_densenet" or "hf:<folder name>".')
    kind: str = Field(description="The network and the layer read, e.g. 'small_cnn pooled' or 'vit pooler_output'.")
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the weights the features come "
                                                                        "from (see each extractor).")
    dim: int = Field(ge=1, description="Length of a feature vector.")
    input_size: tuple[int, int] = Field(description="(height, width) of the images the network sees.")
