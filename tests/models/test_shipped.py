"""The shipped tiny checkpoints: intact (sha256 = manifest), loadable by name, and working."""

import json
import math
import re

import pytest
import torch

from geogrpo.eval.metrics import psnr
from geogrpo.models.autoencoder import FrameAutoencoder
from geogrpo.models.conditioning import ConditionInputs
from geogrpo.models.policy import PRETRAINED_DIR, SHIPPED, VideoPolicy
from geogrpo.utils.io import file_sha256
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


# -- a damaged copy of a shipped model never loads silently ---------------------------------------


def _recast_fp16(path):
    from safetensors.torch import load_file, save_file

    save_file({k: v.half() for k, v in load_file(str(path)).items()}, str(path))


def _zeroed(path):
    path.write_bytes(bytes(path.stat().st_size))


def _truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _extra(path):
    import shutil

    shutil.copy(path, path.with_name("extra.safetensors"))


def _missing(path):
    path.unlink()


FAULTS = {
    "zeroed": (_zeroed, "sha256"),
    "truncated": (_truncated, "sha256"),
    "recast_fp16": (_recast_fp16, "sha256"),
    "missing": (_missing, "missing"),
    "extra": (_extra, "a weight file that"),
}


def _loaders():
    from geogrpo.perception.latent import LatentGeometryModel
    from geogrpo.perception.quality import TinyQualityScorer
    from geogrpo.perception.tinygeo import PRETRAINED_DIR as PERCEPTION_DIR
    from geogrpo.perception.tinygeo import TinyGeo

    return {
        "policy": (PRETRAINED_DIR / "tiny-t2v", "text_encoder/model.safetensors", VideoPolicy),
        "autoencoder": (PRETRAINED_DIR / "tiny-autoencoder", "model.safetensors", FrameAutoencoder),
        "tinygeo": (PERCEPTION_DIR / "tinygeo", "model.safetensors", TinyGeo),
        "quality": (PERCEPTION_DIR / "tiny-quality", "model.safetensors", TinyQualityScorer),
        "lgm": (PERCEPTION_DIR / "tinygeo-lgm", "model.safetensors", LatentGeometryModel),
    }


@pytest.mark.parametrize("loader", ["policy", "autoencoder", "tinygeo", "quality", "lgm"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_damaged_copy_of_a_shipped_model_fails_naming_the_file(tmp_path, loader, fault):
    import shutil

    from geogrpo.utils.integrity import IntegrityError

    source, weights, cls = _loaders()[loader]
    copy = tmp_path / source.name
    shutil.copytree(source, copy)
    damage, message = FAULTS[fault]
    damage(copy / weights)
    named = "extra.safetensors" if fault == "extra" else weights
    raised = (IntegrityError, FileNotFoundError) if fault == "missing" else IntegrityError
    with pytest.raises(raised, match=f"{re.escape(named)}: {message}") as err:
        cls.from_pretrained(copy)
    assert str(copy) in str(err.value)
    if fault == "recast_fp16":  # your own edit: loads when told not to verify, as float32
        model = cls.from_pretrained(copy, verify=False)
        assert next(model.parameters()).dtype == torch.float32


def test_a_corrupt_or_non_json_file_of_an_unverified_load_is_named(tmp_path):
    import shutil

    from geogrpo.utils.integrity import IntegrityError

    copy = tmp_path / "tiny-t2v"
    shutil.copytree(PRETRAINED_DIR / "tiny-t2v", copy)
    _truncated(copy / "transformer" / "diffusion_pytorch_model.safetensors")
    with pytest.raises(IntegrityError, match=r"diffusion_pytorch_model\.safetensors: not a read"):
        VideoPolicy.from_pretrained(copy, verify=False)
    (copy / "policy.json").write_text("conditioning: t2v")
    with pytest.raises(IntegrityError, match=r"policy\.json: not valid JSON .*policy description"):
        VideoPolicy.from_pretrained(copy, verify=False)
    (copy / "manifest.json").write_text("{oops")
    with pytest.raises(IntegrityError, match=r"manifest\.json: not valid JSON"):
        VideoPolicy.from_pretrained(copy)


def test_saved_models_write_a_manifest_that_their_loader_checks(tmp_path):
    from geogrpo.utils.integrity import IntegrityError

    policy = VideoPolicy.from_pretrained("tiny-t2v")
    policy.save_pretrained(tmp_path / "saved")
    manifest = json.loads((tmp_path / "saved" / "manifest.json").read_text())
    assert sorted(manifest["sha256"]) == sorted(
        str(p.relative_to(tmp_path / "saved")) for p in (tmp_path / "saved").rglob("*.safetensors")
    )
    VideoPolicy.from_pretrained(tmp_path / "saved")
    _zeroed(tmp_path / "saved" / "autoencoder" / "model.safetensors")
    with pytest.raises(IntegrityError, match=r"autoencoder/model\.safetensors: sha256"):
        VideoPolicy.from_pretrained(tmp_path / "saved")
