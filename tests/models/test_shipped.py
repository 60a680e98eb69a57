"""The shipped tiny checkpoints: intact (sha256 = manifest), loadable by name, and working."""

import json
import math

import pytest
import torch

from geogrpo.eval.metrics import psnr
from geogrpo.models.autoencoder import FrameAutoencoder
from geogrpo.models.conditioning import ConditionInputs
from geogrpo.models.policy import PRETRAINED_DIR, SHIPPED, VideoPolicy
from geogrpo.pretrain.common import file_sha256
from geogrpo.utils.video import model_to_frames
from geogrpo.world.datasets import TextToVideoClips


def signed_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of videos ``[B, 3, F, H, W]`` in [-1, 1], the batch counted as one video."""

    return psnr(model_to_frames(a).flatten(0, 1), model_to_frames(b).flatten(0, 1))


FOLDERS = sorted({folder for folder, _ in SHIPPED.values()} | {"tiny-autoencoder"})


@pytest.mark.parametrize("folder", FOLDERS)
def test_manifest_lists_every_weight_file_with_its_sha256_and_how_it_was_made(folder):
    root = PRETRAINED_DIR / folder
    manifest = json.loads((root / "manifest.json").read_text())
    weights = {str(p.relative_to(root)) for p in root.rglob("*.safetensors")}
    assert set(manifest["sha256"]) == weights and weights
    for rel, digest in manifest["sha256"].items():
        assert file_sha256(root / rel) == digest, rel
    assert manifest["command"].startswith("geogrpo pretrain")
    assert manifest["wall_time_s"] > 0 and "seed" in manifest and manifest["metrics"]
    size_mb = sum((root / rel).stat().st_size for rel in weights) / 2**20
    assert size_mb < 10  # the repo stays lean


def test_shipped_autoencoder_reconstructs_val_clips_above_the_floor():
    ae = FrameAutoencoder.from_pretrained(PRETRAINED_DIR / "tiny-autoencoder")
    ds = TextToVideoClips("val", 3)
    video = torch.stack([ds[i]["video"] for i in range(3)]).permute(0, 4, 1, 2, 3) * 2 - 1
    with torch.no_grad():
        score = signed_psnr(ae.decode(ae.encode(video)), video)
    assert score >= 27.0  # floor 28 dB on 64 clips (manifest); a 3-clip sample gets 1 dB slack


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_policy_loads_by_name_and_predicts(name):
    policy = VideoPolicy.from_pretrained(name)
    assert policy.conditioning.name == SHIPPED[name][1]
    latent = policy.latent_shape(1, 17, 96, 96)
    assert latent == (1, policy.latent_channels, 5, 12, 12)
    with torch.no_grad():
        cond = policy.prepare(
            ["A room with a red checkered box. The camera pans left."],
            ConditionInputs(
                num_frames=17, image_size=(96, 96), **_v2v_inputs(policy.conditioning.name)
            ),
        )
        x = torch.randn(latent, generator=torch.Generator().manual_seed(0))
        v = policy.velocity(x, 0.5, cond)
    assert v.shape == latent and math.isfinite(float(v.abs().max()))


def _v2v_inputs(name):
    if "v2v" not in name:
        return {}
    geometry = (
        {
            "source_depth": torch.full((1, 17, 96, 96), 3.0),
            "source_w2c": torch.eye(4).expand(1, 17, 4, 4),
        }
        if name == "reproj_v2v"
        else {}
    )
    from geogrpo.camera.presets import preset_trajectory
    from geogrpo.world.render import DEFAULT_FOV_DEG, intrinsics_from_fov

    return {
        "source_video": torch.zeros(1, 3, 17, 96, 96),
        "cameras": preset_trajectory("arc_left", 17).float()[None],
        "intrinsics": intrinsics_from_fov(DEFAULT_FOV_DEG, 96, 96).float()[None],
        **geometry,
    }


# PSNR gain over "copy the source" that each shipped v2v policy must keep (dB)
MARGIN_DB = {"tiny-camera-v2v": 0.0, "tiny-reproj-v2v": 2.0}


@pytest.fixture(scope="module")
def val_pairs():
    from geogrpo.world.datasets import MultiViewPairs

    ds = MultiViewPairs("val", 3)
    return [ds[i] for i in range(3)]


@pytest.mark.parametrize("name", ["tiny-camera-v2v", "tiny-reproj-v2v"])
def test_shipped_v2v_policies_beat_copying_the_source(name, val_pairs):
    """A guard against shipping a broken checkpoint: on fresh val pairs the generated target is
    closer to the true target than the source video is (the floor table is in bench/RESULTS.md,
    on 24 pairs with 20 steps; here 3 pairs and 10 steps)."""
    from geogrpo.train.conditions import from_pairs
    from geogrpo.train.rollout import generate

    policy = VideoPolicy.from_pretrained(name)
    generated, copied = [], []
    for i, it in enumerate(val_pairs):
        cond = from_pairs([it], policy.conditioning.name)
        src = cond.inputs.source_video
        target = it["target_video"].permute(3, 0, 1, 2)[None].float() * 2 - 1
        with torch.no_grad():
            out = generate(
                policy,
                cond.prompts,
                *src.shape[2:],
                num_inference_steps=10,
                seed=i,
                inputs=cond.inputs,
            )
        generated.append(signed_psnr(out, target))
        copied.append(signed_psnr(src, target))
    margin = sum(generated) / 3 - sum(copied) / 3
    assert margin > MARGIN_DB[name], (generated, copied)
