"""The Qwen-VL view judge on tiny random checkpoints built here (no download): plumbing, and a
judge taught bright-is-Yes, which only ranks correctly if prompt, image tokens and answer
position are wired as the judge assumes."""

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2VLImageProcessorPil

from geogrpo.perception.judge import IMAGE_PAD, QwenVLViewJudge, make_judge
from geogrpo.utils.video import to_uint8

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>"]
SPECIAL += [IMAGE_PAD, "<|video_pad|>"]
WORDS = ["[UNK]", "user", "assistant", "Yes", "No", "Is", "this", "view", "plausible?"]
QUESTION = "Is this view plausible?"


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(WORDS + SPECIAL)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=SPECIAL[1:],
    )


def tiny_model(kind: str, tokenizer: PreTrainedTokenizerFast):
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL}
    tokens = dict(
        image_token_id=ids[IMAGE_PAD],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    text = dict(
        vocab_size=len(WORDS) + len(SPECIAL),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=512,
        rope_parameters={"rope_type": "default", "rope_theta": 1e4, "mrope_section": [2, 2, 4]},
    )
    torch.manual_seed(0)
    if kind == "qwen2_vl":
        from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

        vision = dict(
            depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14
        )
        cfg = Qwen2VLConfig(text_config=text, vision_config=vision, **tokens)
        return Qwen2VLForConditionalGeneration(cfg), 14
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    vision = dict(
        depth=1,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        out_hidden_size=32,
        patch_size=16,
        num_position_embeddings=64,
        deepstack_visual_indexes=[0],
    )
    cfg = Qwen3VLConfig(text_config=text, vision_config=vision, **tokens)
    return Qwen3VLForConditionalGeneration(cfg), 16


def save_checkpoint(directory, kind: str):
    tokenizer = tiny_tokenizer()
    model, patch = tiny_model(kind, tokenizer)
    side = 2 * patch  # one merged 2x2 patch group per 2 patches: small images stay cheap
    processor = Qwen2VLImageProcessorPil(
        patch_size=patch, min_pixels=side * side, max_pixels=4 * side * side
    )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module", params=["qwen2_vl", "qwen3_vl"])
def checkpoint(request, tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp(request.param), request.param)


def test_scores_are_probabilities_and_deterministic(checkpoint):
    judge = QwenVLViewJudge(checkpoint, question=QUESTION)
    images = torch.rand(3, 40, 48, 3, generator=torch.Generator().manual_seed(0))
    scores = judge.score(images)
    assert scores.shape == (3,)
    assert bool(((scores > 0) & (scores < 1)).all())
    assert torch.equal(scores, judge.score(images))
    # different images, different scores: the image reaches the answer position
    assert float(scores.max() - scores.min()) > 0


def test_a_judge_taught_bright_is_yes_ranks_bright_views_first(tmp_path):
    """Teach the tiny model through the judge's own prompt, then score unseen images (Qwen2-VL
    only: backward through the tiny Qwen3-VL vision tower takes a minute on 2 cores)."""
    judge = QwenVLViewJudge(save_checkpoint(tmp_path, "qwen2_vl"), question=QUESTION)
    model = judge.model.train().requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)

    def logit_margin(image: torch.Tensor) -> torch.Tensor:
        return judge.answer_margin(to_uint8(image[None])[0])

    for _ in range(40):
        bright = 0.6 + 0.4 * torch.rand(32, 32, 3, generator=g)
        dark = 0.4 * torch.rand(32, 32, 3, generator=g)
        loss = torch.nn.functional.softplus(-logit_margin(bright)) + torch.nn.functional.softplus(
            logit_margin(dark)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().requires_grad_(False)
    bright = 0.6 + 0.4 * torch.rand(4, 32, 32, 3, generator=g)
    dark = 0.4 * torch.rand(4, 32, 32, 3, generator=g)
    assert float(judge.score(bright).min()) > float(judge.score(dark).max())


def test_missing_checkpoint_and_multi_token_answers_say_what_to_do(tmp_path, checkpoint):
    with pytest.raises(FileNotFoundError, match=r"no config\.json .*huggingface-cli download"):
        QwenVLViewJudge(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="splits the answer 'Two words' into 2 tokens"):
        QwenVLViewJudge(checkpoint, answers=("Two words", "No"))


def test_make_judge_takes_a_local_directory(checkpoint):
    assert isinstance(make_judge(checkpoint), QwenVLViewJudge)


def test_make_judge_takes_a_saved_quality_scorer_folder(tmp_path):
    from geogrpo.perception.quality import TinyQualityScorer

    scorer = TinyQualityScorer(width=8)
    scorer.save_pretrained(tmp_path / "scorer")
    judge = make_judge(tmp_path / "scorer")
    assert isinstance(judge, TinyQualityScorer) and judge.config["width"] == 8
    frames = torch.rand(2, 32, 32, 3)
    assert torch.allclose(judge.score(frames), scorer.eval().score(frames))
    first = make_judge("tiny-quality-v1")  # shipped by name: the first, unhardened scorer
    assert isinstance(first, TinyQualityScorer) and not first.config["quantize"]
