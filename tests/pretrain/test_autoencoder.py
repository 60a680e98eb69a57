"""Autoencoder pretraining on tiny clips: it learns, what it writes matches its manifest, and an
interrupted run resumes exactly."""

import json

import pytest
import torch
from safetensors.torch import load_file

from geogrpo.models.autoencoder import FrameAutoencoder
from geogrpo.pretrain import autoencoder
from geogrpo.pretrain.autoencoder import evaluate_autoencoder, pretrain_autoencoder
from geogrpo.pretrain.common import load_videos
from geogrpo.pretrain.config import AutoencoderPretrainConfig
from geogrpo.utils.io import file_sha256
from tests.pretrain.runs import SMALL, fails_on_call


def test_autoencoder_learns_and_its_manifest_matches_the_files(autoencoder_run):
    root, cfg, metrics = autoencoder_run
    val = load_videos("t2v", "val", 2, cfg.data_dir, "video", **SMALL)
    torch.manual_seed(cfg.seed)
    untrained = evaluate_autoencoder(FrameAutoencoder(4, (8, 8, 8)), val)
    assert metrics["val_psnr_db"] > untrained + 3
    manifest = json.loads((root / "ae" / "manifest.json").read_text())
    assert manifest["sha256"] == {
        "model.safetensors": file_sha256(root / "ae" / "model.safetensors")
    }
    assert manifest["config"]["steps"] == 60 and manifest["wall_time_s"] > 0
    loaded = FrameAutoencoder.from_pretrained(root / "ae")
    z = loaded.encode(torch.zeros(1, 3, 5, 32, 32))
    assert z.shape == (1, 16, 2, 4, 4)
    stats = load_videos("t2v", "train", 6, cfg.data_dir, "video", **SMALL).float() / 127.5 - 1
    z = loaded.encode(stats)
    assert abs(float(z.mean())) < 0.1 and abs(float(z.std()) - 1) < 0.1  # normalised latents


def test_an_interrupted_autoencoder_run_resumes_exactly(autoencoder_run, monkeypatch):
    root, ae_cfg, _ = autoencoder_run

    def config(out: str, **changes) -> AutoencoderPretrainConfig:
        settings = {**ae_cfg.__dict__, "out": str(root / out), "steps": 6, "eval_every": 3}
        return AutoencoderPretrainConfig(**{**settings, **changes})

    pretrain_autoencoder(config("ae-whole"))
    with monkeypatch.context() as m:  # one call a step: stops during step 5
        m.setattr(
            autoencoder,
            "frame_reconstruction_loss",
            fails_on_call(5, autoencoder.frame_reconstruction_loss),
        )
        with pytest.raises(RuntimeError, match="power cut"):
            pretrain_autoencoder(config("ae-cut"))
    pretrain_autoencoder(config("ae-cut", resume=True))
    whole = load_file(str(root / "ae-whole" / "model.safetensors"))
    cut = load_file(str(root / "ae-cut" / "model.safetensors"))
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    losses = {
        name: [json.loads(r).get("loss") for r in (root / name / "logs/metrics.jsonl").open()]
        for name in ("ae-whole", "ae-cut")
    }
    assert losses["ae-cut"] == losses["ae-whole"] and len(losses["ae-cut"]) == 7  # + final row
    assert not (root / "ae-cut" / "latest").exists()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="crop"):
        AutoencoderPretrainConfig(crop=60)


def test_frames_in_cpu_chunks_give_what_one_call_gives():
    """Encoding and decoding run CPU_FRAME_CHUNK frames a call; every layer is per frame."""
    from geogrpo.models import autoencoder as ae_module

    torch.manual_seed(0)
    ae = FrameAutoencoder(4, (8, 8, 8)).eval()
    video = torch.rand(3, 3, 9, 32, 32) * 2 - 1  # 27 frames: 3 full chunks and a partial one
    frames = video.transpose(1, 2).reshape(27, 3, 32, 32)
    with torch.no_grad():
        z = ae.encode(video)
        whole_z = ae.encoder(frames)
        chunked_z = ae.encode_frames(frames)
        decoded = ae.decode_frames(chunked_z)
        whole = ae.decoder(whole_z)
    assert ae_module.CPU_FRAME_CHUNK < 27
    torch.testing.assert_close(chunked_z, whole_z, rtol=0, atol=1e-5)  # float rounding
    torch.testing.assert_close(decoded, whole, rtol=0, atol=1e-5)
    assert z.shape == (3, 16, 3, 4, 4)
