"""Quality-scorer pretraining: an interrupted run resumes exactly; generated negatives from
shipped policies and GRPO runs are sampled on train conditions, cached, and ranked by the
truth."""

import json

import pytest
import torch
from safetensors.torch import load_file

from geogrpo.cli import build_parser, config_from_args
from geogrpo.eval import reward_fidelity
from geogrpo.pretrain import quality
from geogrpo.pretrain.config import QualityPretrainConfig
from geogrpo.pretrain.quality import pretrain_quality, ranking_pairs
from tests.pretrain.runs import SMALL, fails_on_call
from tests.train.test_trainer import TINY


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
            "gen_conditions": 0,  # synthetic degradations only (the negatives: below)
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


# tests/train/test_trainer.py's tiny GRPO run, on frames small enough for fast sampling
TINY_GRPO = (
    *TINY,
    "data.frames=5",
    "data.size=32",
    # tinygeo reads 96 px frames only; the quality reward any size
    'rewards.rewards=[{"name": "quality", "weight": 1.0, "options": {}}]',
    "rewards.reference_geometry=world",
)


def test_pretraining_with_generated_negatives_from_a_policy_and_a_grpo_run(tmp_path, monkeypatch):
    from geogrpo.train.config import load_config
    from geogrpo.train.trainer import GRPOTrainer

    data = tmp_path / "data"
    run = tmp_path / "grpo"
    GRPOTrainer(
        load_config("geo_align", overrides=[*TINY_GRPO, f"data.data_dir={data}"]), run
    ).train()
    drawn = []
    real_sample_groups = reward_fidelity.sample_groups

    def spy(policy, conditions, *args, **kwargs):
        drawn.append(conditions)
        return real_sample_groups(policy, conditions, *args, **kwargs)

    def config(out: str, **changes) -> QualityPretrainConfig:
        settings = {
            "out": str(tmp_path / out),
            "data_dir": str(data),
            "n_train": 1,
            "n_val": 1,
            "steps": 4,
            "batch": 4,
            "width": 8,
            "save_every": 2,
            "policies": ("tiny-camera-v2v", str(run)),
            "gen_conditions": 2,
            "gen_group": 3,
            "gen_steps": 2,
            "gen_plan": "window:0:1",
            "gen_batch": 4,
            "rank_batch": 4,
            "rank_margin_db": 0.0,
            **SMALL,
        }
        return QualityPretrainConfig(**{**settings, **changes})

    monkeypatch.setattr(reward_fidelity, "sample_groups", spy)
    metrics = pretrain_quality(config("whole"))
    assert len(drawn) == 2  # once per policy, on the same train conditions
    assert drawn[0].prompts == drawn[1].prompts
    assert torch.equal(drawn[0].truth, drawn[1].truth)
    cached = torch.load(tmp_path / "whole/negatives/policy_1.pt", weights_only=True)
    assert cached["videos"].shape == (2, 3, 5, 32, 32, 3) and cached["videos"].dtype == torch.uint8
    assert cached["psnr"].shape == cached["ssim"].shape == (2, 3, 5)
    assert json.loads(cached["source"])["checkpoint"].startswith(str(run))
    assert metrics["negatives_sources"][0] == {"shipped": "tiny-camera-v2v"}
    assert metrics["train_negatives/ranking_pairs"] > 0
    for p in (0, 1):
        assert 0 <= metrics[f"train_negatives/policy_{p}/truth_ranked_higher"] <= 1
    logged = [json.loads(r) for r in (tmp_path / "whole/logs/metrics.jsonl").open()]
    assert {"loss/synthetic", "loss/truth_above_generated", "loss/ranking"} <= set(logged[0])

    # an interrupted run resumes from the cached negatives, drawing none again, exactly
    drawn.clear()
    with monkeypatch.context() as m:
        m.setattr(quality, "degrade", fails_on_call(13, quality.degrade))  # step 4's first
        with pytest.raises(RuntimeError, match="power cut"):
            pretrain_quality(config("cut"))
    assert len(drawn) == 2
    pretrain_quality(config("cut", resume=True))
    assert len(drawn) == 2
    a, b = (load_file(str(tmp_path / n / "model.safetensors")) for n in ("whole", "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a cache drawn with other settings is not silently reused
    with pytest.raises(ValueError, match="other settings"):
        pretrain_quality(config("cut", gen_noise_level=0.5))


def test_ranking_pairs_need_a_clear_psnr_gap_and_an_agreeing_ssim():
    psnr = torch.tensor([[[20.0], [21.0], [20.2]]])  # one condition, three samples, one frame
    ssim = torch.tensor([[[0.50], [0.60], [0.40]]])
    pairs = ranking_pairs(psnr, ssim, margin_db=0.5, margin_ssim=0.0)
    # 1 > 0 and 1 > 2 by more than 0.5 dB with SSIM agreeing; 2 vs 0 is within the margin
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1, 0, 0), (0, 1, 2, 0)]
    ssim[0, 1, 0] = 0.45  # SSIM now says 0 > 1: that pair goes
    assert sorted(map(tuple, ranking_pairs(psnr, ssim, 0.5, 0.0).tolist())) == [(0, 1, 2, 0)]


def test_policies_flag_takes_names_and_run_folders():
    args = build_parser().parse_args(
        ["pretrain", "quality", "--policies", "tiny-camera-v2v", "runs/geo_align"]
    )
    cfg = config_from_args(args.pretrain_config, args)
    assert cfg.policies == ("tiny-camera-v2v", "runs/geo_align")
    with pytest.raises(ValueError, match="gen_data"):
        QualityPretrainConfig(gen_data="clips")
