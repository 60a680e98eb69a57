"""Text encoders: Wan's UMT5 at full scale, a tiny learned encoder over the world's grammar.

Both return ``[B, L, text_dim]`` states with padding positions zeroed (Wan feeds UMT5 states
padded with zeros to the transformer's cross-attention), so the DiT needs no mask.

:class:`GrammarTextEncoder` is the **embedded stand-in** for UMT5: a word-level vocabulary read
from the procedural world's caption grammar (unknown words, e.g. the held-out photo names, map to
``<unk>``) and a 2-layer transformer encoder trained jointly with the tiny DiT. It reads at most
``max_length`` words (a learned positional table; the shipped encoders' 48 is the grammar's
``CAPTION_MAX_WORDS``, which the grammar keeps every caption within) and refuses longer prompts.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import torch
from torch import Tensor, nn

from geogrpo.utils.checks import check_int_range
from geogrpo.utils.integrity import (
    load_json_object,
    load_safetensors,
    verify_manifest,
    write_digests_manifest,
)
from geogrpo.utils.io import atomic_save_safetensors, atomic_write_json
from geogrpo.world import datasets as grammar

_SPECIAL = ("<pad>", "<unk>")


def grammar_vocabulary() -> list[str]:
    """Every word the caption grammar can emit (scene description + camera sentence)."""
    words = {
        *split_words("A room with a moving, covered in photo and the camera then while."),
        *grammar._COLOR_NAMES,
        *grammar._TEXTURE_WORDS.values(),
        *grammar._SHAPE_WORDS.values(),
        *(w for phrase in grammar._CAMERA_PHRASES for w in phrase.split()),
        *(w.strip() for w in grammar._SPEED_WORDS if w.strip()),
    }
    return [*_SPECIAL, *sorted(words)]


def split_words(text: str) -> list[str]:
    """The words the encoder reads: the ones the caption grammar counts against its limit."""
    return grammar.caption_words(text)


class GrammarTextEncoder(nn.Module):
    """Embedded stand-in for UMT5 (see the module docstring)."""

    def __init__(
        self,
        vocabulary: list[str] | None = None,
        dim: int = 64,
        layers: int = 2,
        heads: int = 4,
        max_length: int = grammar.CAPTION_MAX_WORDS,
    ) -> None:
        super().__init__()
        self.vocabulary = list(vocabulary or grammar_vocabulary())
        if self.vocabulary[: len(_SPECIAL)] != list(_SPECIAL):
            raise ValueError(f"vocabulary: must start with {_SPECIAL}")
        self.index = {w: i for i, w in enumerate(self.vocabulary)}
        self.max_length = check_int_range("max_length", max_length, 1)
        self.config = {"dim": dim, "layers": layers, "heads": heads, "max_length": max_length}
        self.text_dim = dim
        self.embed = nn.Embedding(len(self.vocabulary), dim, padding_idx=0)
        self.position = nn.Parameter(torch.zeros(max_length, dim))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def tokenize(self, prompts: list[str]) -> Tensor:
        """Token ids ``[B, max_length]`` (0 = padding); longer prompts are an error, not a cut."""
        ids = torch.zeros(len(prompts), self.max_length, dtype=torch.long)
        for b, prompt in enumerate(prompts):
            words = split_words(prompt)
            if len(words) > self.max_length:
                raise ValueError(
                    f"prompts: {prompt!r} has {len(words)} words; this encoder reads at most "
                    f"{self.max_length}"
                )
            ids[b, : len(words)] = torch.tensor(
                [self.index.get(w, 1) for w in words] or [], dtype=torch.long
            )
        return ids

    def forward(self, prompts: list[str]) -> Tensor:
        """``[B, max_length, dim]`` states, zero at padding."""
        ids = self.tokenize(prompts).to(self.embed.weight.device)
        pad = ids == 0
        x = self.embed(ids) + self.position
        x = self.norm(self.encoder(x, src_key_padding_mask=pad))
        return x.masked_fill(pad[..., None], 0.0)

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            directory / "config.json",
            {"class": "GrammarTextEncoder", "vocabulary": self.vocabulary, **self.config},
        )
        atomic_save_safetensors(directory / "model.safetensors", self.state_dict())
        write_digests_manifest(directory)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, verify: bool | None = None
    ) -> GrammarTextEncoder:
        """Load a folder written by :meth:`save_pretrained`, its ``manifest.json`` checked first
        unless ``verify=False``."""
        directory = Path(directory)
        verify_manifest(directory, verify=verify)
        config = load_json_object(directory / "config.json", "text encoder config")
        config.pop("class", None)
        model = cls(**config)
        model.load_state_dict(load_safetensors(directory / "model.safetensors"))
        return model


class UMT5TextEncoder(nn.Module):
    """Wan's text encoder (UMT5-XXL encoder, 4096-d states, 512 tokens) from a local checkpoint."""

    def __init__(self, encoder: nn.Module, tokenizer: object, max_length: int = 512) -> None:
        super().__init__()
        self.encoder, self.tokenizer, self.max_length = encoder, tokenizer, max_length
        self.text_dim = encoder.config.d_model

    def forward(self, prompts: list[str]) -> Tensor:
        tok = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            return_tensors="pt",
        )
        device = next(self.encoder.parameters()).device
        mask = tok.attention_mask.to(device)
        states = self.encoder(tok.input_ids.to(device), attention_mask=mask).last_hidden_state
        return states * mask[..., None].to(states.dtype)

    @classmethod
    def from_pretrained(cls, root: str | Path) -> UMT5TextEncoder:
        """``root/text_encoder`` (weights from safetensors only, never a pickled ``.bin``) and
        ``root/tokenizer`` of a diffusers Wan2.1 folder."""
        from transformers import AutoTokenizer, UMT5EncoderModel

        root = Path(root)
        return cls(
            UMT5EncoderModel.from_pretrained(str(root / "text_encoder"), use_safetensors=True),
            AutoTokenizer.from_pretrained(str(root / "tokenizer")),
        )


class RandomTextStates(nn.Module):
    """A stand-in for UMT5-XXL in full-scale dry runs (``random:`` policies): each prompt maps
    to fixed Gaussian states ``[length, dim]`` seeded by its text, as many tokens as Wan's
    encoder pads to. It has no weights; UMT5 runs once per prompt outside the update, so its
    cost is not what these runs measure."""

    def __init__(self, dim: int = 4096, length: int = 512) -> None:
        super().__init__()
        self.text_dim, self.length = dim, length

    def forward(self, prompts: list[str]) -> Tensor:
        states = []
        for prompt in prompts:
            gen = torch.Generator().manual_seed(zlib.crc32(prompt.encode()))
            states.append(torch.randn(self.length, self.text_dim, generator=gen))
        return torch.stack(states)
