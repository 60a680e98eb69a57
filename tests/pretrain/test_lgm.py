"""LGM pretraining: a run stopped in either stage resumes exactly."""

import json

import pytest
import torch
from safetensors.torch import load_file

from geogrpo.perception.tinygeo import TinyGeo
from geogrpo.pretrain import lgm
from geogrpo.pretrain.config import LGMPretrainConfig
from geogrpo.pretrain.lgm import pretrain_lgm
from tests.pretrain.runs import SMALL, fails_on_call


def test_a_run_interrupted_in_either_stage_resumes_exactly(tmp_path, monkeypatch):
    torch.manual_seed(0)
    TinyGeo(dim=32, heads=2, layers=2, size=32).save_pretrained(tmp_path / "geo")

    def config(out: str, **changes) -> LGMPretrainConfig:
        settings = {
            "out": str(tmp_path / out),
            "geo": str(tmp_path / "geo"),
            "data_dir": str(tmp_path / "data"),
            "n_train": 2,
            "n_val": 1,
            "feature_steps": 3,
            "prediction_steps": 4,
            "batch": 2,
            "hidden": 16,
            "save_every": 2,
            **SMALL,
        }
        return LGMPretrainConfig(**{**settings, **changes})

    def read(name: str) -> tuple[dict, list, dict]:
        weights = load_file(str(tmp_path / name / "model.safetensors"))
        log = [json.loads(r) for r in (tmp_path / name / "logs/metrics.jsonl").open()]
        manifest = json.loads((tmp_path / name / "manifest.json").read_text())
        return weights, log, manifest["metrics"]

    pretrain_lgm(config("whole"))
    whole = read("whole")
    # prediction_alignment_loss runs once a step of stage 2 (steps 4-7), saves are at 2, 4, 6:
    # its 1st call stops step 4 (resumed from stage 1), its 3rd step 6 (resumed from stage 2)
    for call, saved in ((1, 2), (3, 4)):
        name = f"cut{call}"
        with monkeypatch.context() as m:
            failing = fails_on_call(call, lgm.prediction_alignment_loss)
            m.setattr(lgm, "prediction_alignment_loss", failing)
            with pytest.raises(RuntimeError, match="power cut"):
                pretrain_lgm(config(name))
        logged = [json.loads(r)["step"] for r in (tmp_path / name / "logs/metrics.jsonl").open()]
        assert logged == list(range(1, saved + 2))  # the step after the save was logged too
        pretrain_lgm(config(name, resume=True))
        weights, log, metrics = read(name)
        assert all(torch.equal(whole[0][k], weights[k]) for k in whole[0])
        assert log == whole[1] and metrics == whole[2]
        assert not (tmp_path / name / "latest").exists()
