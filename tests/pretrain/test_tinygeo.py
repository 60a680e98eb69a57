"""tinygeo pretraining: augmentations, a refused init, and an interrupted run that resumes
exactly."""

import json

import pytest
import torch
from safetensors.torch import load_file

from geogrpo.pretrain import tinygeo
from geogrpo.pretrain.config import TinyGeoPretrainConfig
from geogrpo.pretrain.tinygeo import augment, pretrain_tinygeo, temporal_jitter
from tests.pretrain.runs import fails_on_call


def test_temporal_jitter_keeps_order_and_repeats_at_most_one_frame():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        idx = temporal_jitter(17, 9, g)
        assert len(idx) == 9 and idx.min() >= 0 and idx.max() < 17
        steps = idx[1:] - idx[:-1]
        assert bool((steps >= 0).all()) and int((steps == 0).sum()) <= 1


def test_augment_changes_pixels_but_keeps_range_and_shape():
    video = torch.rand(2, 3, 32, 32, 3)
    out = augment(video, torch.Generator().manual_seed(1), None)
    assert out.shape == video.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, video)


def test_init_from_a_model_of_another_shape_fails_before_rendering(tmp_path):
    cfg = TinyGeoPretrainConfig(
        out=str(tmp_path), data_dir=str(tmp_path), init_from="tinygeo", dim=64
    )
    with pytest.raises(ValueError, match="init_from: tinygeo was built with .*'dim': 128"):
        pretrain_tinygeo(cfg)
    assert not (tmp_path / "pairs").exists()


def test_an_interrupted_tinygeo_run_resumes_exactly(tmp_path, monkeypatch):
    def config(out: str, **changes) -> TinyGeoPretrainConfig:
        settings = {
            "out": str(tmp_path / out),
            "data_dir": str(tmp_path / "data"),
            "n_train": 2,
            "n_val": 1,
            "n_heldout": 1,
            "steps": 5,
            "batch": 2,
            "clip_frames": 3,
            "dim": 32,
            "heads": 2,
            "layers": 2,
            "size": 32,
            "frames": 5,
            "eval_every": 2,
        }
        return TinyGeoPretrainConfig(**{**settings, **changes})

    pretrain_tinygeo(config("whole"))
    with monkeypatch.context() as m:  # one call a step: stops during step 4
        m.setattr(tinygeo, "geometry_loss", fails_on_call(4, tinygeo.geometry_loss))
        with pytest.raises(RuntimeError, match="power cut"):
            pretrain_tinygeo(config("cut"))
    pretrain_tinygeo(config("cut", resume=True))
    files = {
        name: load_file(str(tmp_path / name / "model.safetensors")) for name in ("whole", "cut")
    }
    assert all(torch.equal(files["whole"][k], files["cut"][k]) for k in files["whole"])
    logs = {
        name: [json.loads(r) for r in (tmp_path / name / "logs/metrics.jsonl").open()]
        for name in ("whole", "cut")
    }
    assert logs["cut"] == logs["whole"]  # losses and the held-out metrics, step by step
