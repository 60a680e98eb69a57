"""Quality-scorer pretraining: an interrupted run resumes exactly."""

import json

import pytest
import torch
from safetensors.torch import load_file

from geogrpo.pretrain import quality
from geogrpo.pretrain.config import QualityPretrainConfig
from geogrpo.pretrain.quality import pretrain_quality
from tests.pretrain.runs import SMALL, fails_on_call


def test_an_interrupted_quality_run_resumes_exactly(tmp_path, monkeypatch):
    def config(out: str, **changes) -> QualityPretrainConfig:
        settings = {
            "out": str(tmp_path / out),
            "data_dir": str(tmp_path / "data"),
            "n_train": 2,
            "n_val": 1,
            "steps": 6,
            "batch": 8,
            "width": 8,
            "save_every": 2,
            **SMALL,
        }
        return QualityPretrainConfig(**{**settings, **changes})

    pretrain_quality(config("whole"))
    with monkeypatch.context() as m:  # one call per degradation, four a step: stops in step 5
        m.setattr(quality, "degrade", fails_on_call(17, quality.degrade))
        with pytest.raises(RuntimeError, match="power cut"):
            pretrain_quality(config("cut"))
    logged = [json.loads(r)["step"] for r in (tmp_path / "cut/logs/metrics.jsonl").open()]
    assert logged == [1, 2, 3, 4]  # the state of step 4 was saved
    with pytest.raises(ValueError, match="lr"):
        pretrain_quality(config("cut", resume=True, lr=1e-3))
    pretrain_quality(config("cut", resume=True, save_every=3))  # saving elsewhere is allowed
    files = {
        name: load_file(str(tmp_path / name / "model.safetensors")) for name in ("whole", "cut")
    }
    assert all(torch.equal(files["whole"][k], files["cut"][k]) for k in files["whole"])
    logs, metrics = {}, {}
    for name in ("whole", "cut"):
        logs[name] = [json.loads(r) for r in (tmp_path / name / "logs/metrics.jsonl").open()]
        metrics[name] = json.loads((tmp_path / name / "manifest.json").read_text())["metrics"]
    assert logs["cut"] == logs["whole"] and metrics["cut"] == metrics["whole"]
    assert not (tmp_path / "cut" / "latest").exists()
    with pytest.raises(FileNotFoundError, match="without --resume"):  # it finished
        pretrain_quality(config("cut", resume=True))
