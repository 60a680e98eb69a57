"""The reward-fidelity suite end to end: plumbing against a reward that knows the truth, the
command line, and bad input."""

from __future__ import annotations

import json

import pytest
import torch

from geogrpo.cli import main
from geogrpo.eval.reward_fidelity import score_groups
from geogrpo.eval.suites import parse_plan, parse_reward
from geogrpo.rewards.base import RewardOutput
from geogrpo.train.conditions import from_items, load_items
from geogrpo.train.config import load_config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


class NegativeMSE:
    """A reward that knows the truth: minus the mean squared error to the true target."""

    def __call__(self, batch) -> RewardOutput:
        truth = self.truth.expand_as(batch.video)
        scores = -(batch.video - truth).square().flatten(1).mean(1)
        return RewardOutput(scores.float(), torch.ones(len(scores), dtype=torch.bool))


def test_score_groups_orients_and_groups_the_truth(data_dir):
    config = load_config("camera_fidelity", overrides=[f"data.data_dir={data_dir}"])
    items = load_items(config.data, "val", 2, "pairs")
    cond = from_items(items, "camera_v2v")
    gen = torch.Generator().manual_seed(0)
    videos = []
    for n in range(2):  # group member j: the truth plus noise of growing strength
        noise = torch.randn((4, *cond.truth.shape[1:]), generator=gen)
        strength = torch.tensor([0.02, 0.05, 0.1, 0.2])[:, None, None, None, None]
        videos.append((cond.truth[n] + strength * noise).clamp(0, 1))
    oracle = NegativeMSE()
    rows = {}
    for n in range(2):
        oracle.truth = cond.truth[n : n + 1]
        scores = score_groups(
            [videos[n]], [None], cond.select([n]), [("oracle", oracle)], "camera_v2v"
        )
        rows[n] = {r["truth"]: r for r in scores.table()}
    for n in range(2):
        assert rows[n]["psnr"]["spearman"] == pytest.approx(1.0)
        assert rows[n]["ssim"]["spearman"] == pytest.approx(1.0)
        assert rows[n]["perceptual_distance"]["spearman"] > 0.7  # a distance, negated
        assert rows[n]["psnr"]["best_above_median"] == 1.0
    record = scores.samples()[0]
    assert {"truth/psnr", "truth/confirmed_share", "reward/oracle"} <= set(record)


def test_cli_reward_fidelity_writes_samples_summary_and_table(data_dir, tmp_path, capsys):
    out = tmp_path / "rf"
    args = ["eval", "--suite", "reward-fidelity", "--recipe", "camera_fidelity", "--n", "1"]
    args += ["--group", "3", "--num-inference-steps", "2", "--plan", "window:0:1", "--fast-truth"]
    args += ["--reward", 'view_fidelity:{"weights": [1, 1, 0, 0]}', "--reward", "smoothness"]
    for s in (f"data.data_dir={data_dir}", "data.workers=1", "rewards.estimator=tinygeo"):
        args += ["--set", s]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "within-group Spearman" in printed
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 3 and all("truth/psnr" in s for s in samples)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["plan"] == "window:0:1" and summary["group_size"] == 3
    labels = {row["reward"] for row in summary["table"]}
    assert labels == {'view_fidelity{"weights":[1,1,0,0]}', "smoothness"}
    assert (out / "table.md").is_file()


def test_parse_reward_and_plan():
    assert parse_reward("quality") == {
        "name": "quality",
        "weight": 1.0,
        "options": {},
        "label": "quality",
    }
    assert parse_reward('trajectory:{"align": "sim3"}')["options"] == {"align": "sim3"}
    with pytest.raises(ValueError, match="JSON object"):
        parse_reward("trajectory:{align}")
    full = parse_plan("full", 4, 2)
    assert full.sde == (True,) * 4
    window = parse_plan("window:1:2", 4, 3)
    assert window.sde == (False, True, True, False) == window.train
    assert parse_plan("window:2", 5, 3).sde == (False, False, True, True, True)
    for bad in ("window:3:2", "ode", "window:x"):
        with pytest.raises(ValueError, match="--plan"):
            parse_plan(bad, 4, 2)


def test_cli_eval_needs_a_recipe_or_a_run(tmp_path, capsys):
    assert main(["eval", "--suite", "reward-fidelity", "--out", str(tmp_path)]) == 2
    assert "--recipe" in capsys.readouterr().err
    args = ["eval", "--suite", "reward-fidelity", "--recipe", "geo_align", "--group", "1"]
    assert main([*args, "--out", str(tmp_path)]) == 2
    assert "--group" in capsys.readouterr().err
    args = ["eval", "--suite", "reward-fidelity", "--recipe", "geo_align", "--split", "train"]
    assert main([*args, "--out", str(tmp_path)]) == 2
    assert "held-out" in capsys.readouterr().err


def test_estimated_reference_geometry_replaces_the_worlds_and_stays_close(data_dir):
    from geogrpo.eval.metrics import psnr_per_sample
    from geogrpo.recipes.build import build_estimator
    from geogrpo.train.conditions import estimate_source_geometry

    config = load_config("camera_fidelity", overrides=[f"data.data_dir={data_dir}"])
    items = load_items(config.data, "val", 2, "pairs")
    with pytest.raises(ValueError, match="estimate_source_geometry"):
        from_items(items, "camera_v2v", "estimated")
    estimated = estimate_source_geometry(items, build_estimator("flow_pnp"))
    assert "estimated_source_depth" not in items[0]  # the cached items are not modified
    world = from_items(items, "camera_v2v", "world")
    est = from_items(estimated, "camera_v2v", "estimated")
    assert torch.equal(world.truth, est.truth) and torch.equal(
        world.inputs.cameras, est.inputs.cameras
    )
    assert not torch.equal(world.reference_video, est.reference_video)
    both = world.visible & est.visible
    mask = both[..., None].float()
    # where both reprojections have content they agree (estimated depth is not exact)
    close = psnr_per_sample(world.reference_video * mask, est.reference_video * mask)
    assert bool((close > 18).all()), close
    with pytest.raises(ValueError, match="reference_geometry"):
        from_items(items, "camera_v2v", "true")
    with pytest.raises(ValueError, match="up to scale"):
        estimate_source_geometry(items, build_estimator("classical"))
