"""View judges: ``judge.score(images [N, H, W, 3] in [0, 1]) -> [N]`` in [0, 1], higher = more
structurally plausible. World-R1's S_meta asks Qwen3-VL whether a view rendered from an offset
camera is structurally reliable (flat geometry, floaters and stretched textures show there first).

* :class:`QwenVLViewJudge` is that judge: any image-text-to-text checkpoint of the Qwen-VL
  family (Qwen2-VL, Qwen2.5-VL, Qwen3-VL) from a **local** directory, scored as
  ``P(Yes) / (P(Yes) + P(No))`` of the next token after a yes/no question (no sampling, so the
  score is deterministic and smooth).
* ``"tiny-quality"`` (:class:`~geogrpo.perception.quality.TinyQualityScorer`) is the embedded
  default: it judges looks, not structure, and is named as the stand-in it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from geogrpo.perception.base import check_video
from geogrpo.utils.video import to_uint8

IMAGE_PAD = "<|image_pad|>"  # Qwen-VL's placeholder, one per merged vision patch
DEFAULT_QUESTION = (
    "This image is a view of a 3D scene rendered from a new camera position. Is the 3D "
    "structure plausible, without flat cut-outs, floating blobs, holes or stretched textures? "
    "Answer Yes or No."
)


@runtime_checkable
class ViewJudge(Protocol):
    name: str

    def score(self, images: Tensor) -> Tensor:
        """``images [N, H, W, 3]`` in [0, 1] -> ``[N]`` in [0, 1]."""
        ...


def _answer_token(tokenizer: Any, word: str) -> int:
    ids = tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(
            f"judge: the tokenizer splits the answer {word!r} into {len(ids)} tokens; pass "
            "answers that are single tokens of this model (e.g. answers=('yes', 'no'))"
        )
    return int(ids[0])


class QwenVLViewJudge:
    """A Qwen-VL model from a local directory asked a yes/no question about each image."""

    name = "qwen_vl"

    def __init__(
        self,
        model_dir: str | Path,
        question: str = DEFAULT_QUESTION,
        answers: tuple[str, str] = ("Yes", "No"),
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"model_dir: no config.json in {model_dir}; download a Qwen-VL checkpoint "
                "(e.g. Qwen/Qwen3-VL-8B-Instruct with `huggingface-cli download`) to a local "
                "directory and pass its path"
            )
        # Tokenizer and image processor instead of AutoProcessor: the processor also builds the
        # video processor, which needs torchvision; the image path does not.
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.image_processor = AutoImageProcessor.from_pretrained(model_dir, local_files_only=True)
        self.model = AutoModelForImageTextToText.from_pretrained(
            model_dir, local_files_only=True, dtype=dtype
        ).to(device)
        self.model.eval().requires_grad_(False)
        self.device, self.question = device, question
        self.answer_ids = tuple(_answer_token(self.tokenizer, a) for a in answers)
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        self.merge = int(self.image_processor.merge_size)

    def prompt(self, image_tokens: int) -> str:
        """The Qwen-VL chat format (ChatML with a vision span) for one image and the question."""
        return (
            f"<|im_start|>user\n<|vision_start|>{IMAGE_PAD * image_tokens}<|vision_end|>"
            f"{self.question}<|im_end|>\n<|im_start|>assistant\n"
        )

    def answer_margin(self, image: np.ndarray) -> Tensor:
        """``logit(Yes) - logit(No)`` of the next token for one ``[H, W, 3]`` uint8 image (with
        gradients when the model has them; one image at a time, so no padding and the last
        position is the answer)."""
        vision = self.image_processor(images=[image], return_tensors="pt")
        tokens = int(vision["image_grid_thw"].prod()) // self.merge**2  # [1, 3]: t, h, w patches
        text = self.tokenizer([self.prompt(tokens)], return_tensors="pt", add_special_tokens=False)
        mm_types = (text["input_ids"] == self.image_token_id).long()  # 1 = image, for M-RoPE
        inputs = {**text, **vision, "mm_token_type_ids": mm_types}
        logits = self.model(**{k: v.to(self.device) for k, v in inputs.items()}).logits[0, -1]
        yes, no = self.answer_ids
        return (logits[yes] - logits[no]).float()

    def score(self, images: Tensor) -> Tensor:
        """``P(Yes) / (P(Yes) + P(No)) = sigmoid(answer_margin)`` per image."""
        check_video("images", images[None])
        with torch.no_grad():
            margins = torch.stack([self.answer_margin(image) for image in to_uint8(images)])
        return torch.sigmoid(margins).cpu()


def make_judge(name_or_path: str | Path, device: torch.device | str | None = None) -> ViewJudge:
    """A shipped ``TinyQualityScorer`` by name (``"tiny-quality"``, the embedded stand-in, or
    ``"tiny-quality-v1"``, its first version), a folder of one saved by ``geogrpo pretrain
    quality``, or a local Qwen-VL directory; its model on ``device`` (None: the CPU)."""
    from geogrpo.perception.tinygeo import resolve_pretrained

    try:  # a saved perception model: config.json + model.safetensors, shipped or a folder
        config = resolve_pretrained(name_or_path) / "config.json"
    except FileNotFoundError:
        return QwenVLViewJudge(name_or_path, device=str(device or "cpu"))
    if json.loads(config.read_text(encoding="utf-8")).get("class") == "TinyQualityScorer":
        from geogrpo.perception.quality import TinyQualityScorer

        return TinyQualityScorer.from_pretrained(name_or_path).to(device)
    return QwenVLViewJudge(name_or_path, device=str(device or "cpu"))
