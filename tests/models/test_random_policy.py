"""``random:`` policies: a full-size Wan2.1 architecture with random weights for dry runs of
full-scale recipes (memory, speed), built the same for the same seed; here on a registered
small architecture so that the test stays small."""

from __future__ import annotations

import pytest
import torch

from geogrpo.models.conditioning import ConditionInputs
from geogrpo.models.policy import VideoPolicy
from geogrpo.models.text import RandomTextStates
from geogrpo.models.wan import CONFIGS, WAN21_T2V_1P3B

SMALL = {**WAN21_T2V_1P3B, "num_layers": 1, "num_attention_heads": 2, "ffn_dim": 64}


@pytest.fixture
def small_architecture(monkeypatch):
    monkeypatch.setitem(CONFIGS, "small-test", SMALL)
    return "random:small-test"


def test_random_policies_have_the_architecture_and_the_same_seed_gives_the_same_weights(
    small_architecture,
):
    a = VideoPolicy.from_pretrained(small_architecture, conditioning="reproj_v2v")
    b = VideoPolicy.from_pretrained(small_architecture, conditioning="reproj_v2v")
    other = VideoPolicy.random_weights("small-test", "reproj_v2v", seed=1)
    assert a.conditioning.name == "reproj_v2v"
    assert a.transformer.config.in_channels == 16 + a.conditioning.extra_channels(16)
    assert a.transformer.config.text_dim == 4096 and a.latent_channels == 16
    for (name, x), y in zip(
        a.transformer.state_dict().items(), b.transformer.state_dict().values(), strict=True
    ):
        assert torch.equal(x, y), name
    assert any(
        not torch.equal(x, z)
        for x, z in zip(a.state_dict().values(), other.state_dict().values(), strict=True)
    )
    t2v = VideoPolicy.from_pretrained(small_architecture)
    condition = t2v.prepare(["a cube", "a cube"], ConditionInputs(num_frames=5))
    x = torch.randn(t2v.latent_shape(2, 5, 32, 32))
    v = t2v.velocity(x, 0.5, condition)
    assert v.shape == x.shape and torch.isfinite(v).all()


def test_random_text_states_are_fixed_per_prompt_and_wan_sized():
    encoder = RandomTextStates()
    a, b = encoder(["pan left", "a cube"]), encoder(["pan left"])
    assert a.shape == (2, 512, 4096)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], a[1])


def test_an_unknown_random_architecture_names_the_known_ones():
    with pytest.raises(ValueError, match="random:wan2.1-t2v-1.3b, random:wan2.1-t2v-14b"):
        VideoPolicy.from_pretrained("random:wan2.1-t2v-7b")
