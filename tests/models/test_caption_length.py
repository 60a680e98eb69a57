"""The shipped text encoders read every caption the world writes, whole (issue 22: heldout_photo
captions of up to 68 words used to exceed their 48 positions)."""

import math

import pytest
import torch

from geogrpo.models.conditioning import ConditionInputs
from geogrpo.models.policy import PRETRAINED_DIR, SHIPPED, VideoPolicy
from geogrpo.models.text import GrammarTextEncoder, split_words
from geogrpo.world.datasets import (
    CAPTION_MAX_WORDS,
    SPLITS,
    MultiViewPairs,
    TextToVideoClips,
    describe_scene,
    scene_for,
)

N = 150  # items of each kind per split, plus N scenes with moving objects
ENCODERS = sorted({folder for folder, _ in SHIPPED.values()})


@pytest.fixture(scope="module")
def captions():
    out = {}
    for split in SPLITS:
        t2v, pairs = TextToVideoClips(split, N, seed=1), MultiViewPairs(split, N, seed=1)
        out[split] = (
            [t2v.caption(i) for i in range(N)]
            + [pairs.caption(i) for i in range(N)]
            + [describe_scene(scene_for(split, N + i, dynamic=True)) for i in range(N)]
        )
    return out


@pytest.mark.parametrize("folder", ENCODERS)
def test_every_shipped_text_encoder_reads_every_caption_of_every_split_whole(folder, captions):
    enc = GrammarTextEncoder.from_pretrained(PRETRAINED_DIR / folder / "text_encoder")
    assert enc.max_length == CAPTION_MAX_WORDS
    for split, texts in captions.items():
        ids = enc.tokenize(texts)  # raises on a caption longer than the encoder reads
        lengths = (ids != 0).sum(1).tolist()
        assert lengths == [len(split_words(t)) for t in texts], split  # nothing cut


def test_the_shipped_t2v_policy_takes_the_longest_heldout_photo_captions(captions):
    texts = sorted(captions["heldout_photo"][:N], key=lambda t: len(split_words(t)))[-2:]
    assert len(split_words(texts[-1])) == CAPTION_MAX_WORDS  # the long form, filled exactly
    policy = VideoPolicy.from_pretrained("tiny-t2v")
    latent = policy.latent_shape(2, 17, 96, 96)
    with torch.no_grad():
        cond = policy.prepare(texts, ConditionInputs(num_frames=17, image_size=(96, 96)))
        x = torch.randn(latent, generator=torch.Generator().manual_seed(0))
        v = policy.velocity(x, 0.5, cond)
    assert v.shape == latent and math.isfinite(float(v.abs().max()))
