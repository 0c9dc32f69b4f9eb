"""Turning a condition into the cross-attention context: label tokens plus a tokenised prompt.

A condition's prompt (`generators/prompts.py`, "chest x-ray with cardiomegaly") is tokenised; its
multi-hot label vector also becomes one token per label (positive, negative or unknown). Dropping both
(unknown labels, empty prompt) gives the unconditional context that classifier-free guidance needs.
The text side is a small CLIP text transformer trained from scratch with the denoiser: no
pretrained text encoder may be fetched, and a word-level vocabulary covers the prompts we write.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from cxrbench.conditions import Condition

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
UNKNOWN_LABEL = 2
"""Label token value meaning 'not specified' (0 = absent, 1 = present)."""


def build_tokenizer(prompts: Iterable[str]) -> Tokenizer:
    """A word-level vocabulary of the training prompts; unseen words map to [UNK]."""
    words = sorted({word for prompt in prompts for word in _words(prompt)})
    vocabulary = {token: i for i, token in enumerate([PAD, UNK, BOS, EOS, *words])}
    tokenizer = Tokenizer(WordLevel(vocabulary, unk_token=UNK))
    tokenizer.pre_tokenizer = Whitespace()
    return tokenizer


def _words(prompt: str) -> list[str]:
    pre = Whitespace()
    return [word for word, _ in pre.pre_tokenize_str(prompt.lower())]


def tokenize(tokenizer: Tokenizer, prompts: list[str], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask (B, length): [BOS] words [EOS], padded or cut."""
    bos, eos, pad = (tokenizer.token_to_id(t) for t in (BOS, EOS, PAD))
    ids = torch.full((len(prompts), length), pad, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        words = tokenizer.encode(prompt.lower()).ids[: length - 2]
        ids[row, : len(words) + 2] = torch.tensor([bos, *words, eos])
    return ids, (ids != pad).long()


def label_ids(conditions: list[Condition], labels: list[str]) -> torch.Tensor:
    """(B, L) label token values: 1 present, 0 absent, UNKNOWN_LABEL where the condition does not say."""
    return torch.tensor([[int(c.labels.get(name, UNKNOWN_LABEL)) for name in labels] for c in conditions],
                        dtype=torch.long).reshape(len(conditions), len(labels))


class ConditionEncoder(ModelMixin, ConfigMixin):
    """Label tokens and prompt tokens -> one context sequence (B, L + T, dim) for cross-attention."""

    @register_to_config
    def __init__(self, n_labels: int, vocab_size: int, dim: int, prompt_tokens: int, text_layers: int) -> None:
        super().__init__()
        from transformers import CLIPTextConfig, CLIPTextModel

        self.label_embedding = torch.nn.Embedding(3 * max(n_labels, 1), dim)
        self.text = CLIPTextModel(CLIPTextConfig(
            vocab_size=vocab_size, hidden_size=dim, intermediate_size=2 * dim, num_hidden_layers=text_layers,
            num_attention_heads=max(1, dim // 16), max_position_embeddings=prompt_tokens, pad_token_id=0,
            bos_token_id=2, eos_token_id=3))

    def forward(self, label_values: torch.Tensor, token_ids: torch.Tensor,
                token_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Context (B, L + T, dim) and its attention mask (B, L + T)."""
        offsets = 3 * torch.arange(label_values.shape[1], device=label_values.device)
        labels = self.label_embedding(label_values + offsets)
        text = self.text(input_ids=token_ids, attention_mask=token_mask).last_hidden_state
        mask = torch.cat([torch.ones(label_values.shape, dtype=token_mask.dtype, device=token_mask.device),
                          token_mask], 1)
        return torch.cat([labels, text], dim=1), mask


def save_tokenizer(tokenizer: Tokenizer, directory: Path) -> None:
    tokenizer.save(str(directory / "tokenizer.json"))


def load_tokenizer(directory: Path) -> Tokenizer:
    return Tokenizer.from_file(str(directory / "tokenizer.json"))
