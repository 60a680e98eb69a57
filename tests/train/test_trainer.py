"""The GRPO trainer end to end on the shipped tiny models: what trains, exact resume, gradient
accumulation, the first ratio, the ground truth beside the reward, and bad input."""

from __future__ import annotations

import json

import pytest
import torch

from geogrpo.train.config import load_config, recipe_names
from geogrpo.train.logging import read_jsonl
from geogrpo.train.trainer import GRPOTrainer, policy_from_run, watchdog_stats

# Small enough for 2 CPU cores: one condition, groups of 2, 2 denoising steps, no evaluation.
TINY = (
    "steps=1",
    "sampling.group_size=2",
    "sampling.conditions_per_step=1",
    "sampling.num_inference_steps=2",
    "sampling.eval_num_inference_steps=2",
    "sampling.window_size=1",
    "sampling.micro_batch_size=2",
    "data.train_items=1",
    "data.workers=1",
    "data.adevis_max_steps=2",
    "data.adevis_stage_steps=2",
    "eval.every=0",
    "eval.train_conditions=0",
    "eval.val_conditions=0",
    "checkpoint.every=0",
    "logging.tensorboard=false",
    "logging.progress=false",
    "rl.clip_range=10.0",
    "rl.inner_epochs=2",
    "optim.lr=1e-3",
    "data.decoupled_every=0",
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def tiny(recipe: str, data_dir, *more: str):
    return load_config(recipe, overrides=[*TINY, f"data.data_dir={data_dir}", *more])


def snapshot(trainer: GRPOTrainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainer.policy.named_parameters()}


@pytest.mark.slow
@pytest.mark.parametrize(
    "recipe", ["geo_align", "devis_grpo", "vggrpo", "world_r1", "camera_fidelity"]
)
def test_every_trainable_parameter_changes_and_no_frozen_one(recipe, data_dir, tmp_path):
    trainer = GRPOTrainer(tiny(recipe, data_dir), tmp_path / recipe)
    trained = {f"transformer.{n}" for n, _ in trainer.trainable}
    before = snapshot(trainer)
    row = trainer.train_step(0)
    after = snapshot(trainer)
    assert trained and trained < set(before)
    unchanged = [n for n in trained if torch.equal(before[n], after[n])]
    assert not unchanged, unchanged[:5]
    moved = [n for n in before if n not in trained and not torch.equal(before[n], after[n])]
    assert not moved, moved[:5]
    assert row["ratio_first_max_dev"] == 0.0  # a fresh rollout re-scores exactly
    for name, _, _ in trainer.rewards:
        assert f"reward/{name}" in row
    truth = [k for k in row if k.startswith("truth/")]
    assert truth, "the ground truth must be logged beside the rewards"


def test_2n_steps_equal_n_steps_resume_n_steps(data_dir, tmp_path):
    settings = ("steps=2", "checkpoint.every=1")
    whole = GRPOTrainer(tiny("overfit", data_dir, *settings), tmp_path / "whole")
    whole.train()
    half = GRPOTrainer(tiny("overfit", data_dir, *settings, "steps=1"), tmp_path / "half")
    half.train()
    resumed = GRPOTrainer(tiny("overfit", data_dir, *settings), tmp_path / "half", resume="auto")
    assert resumed.step == 1
    resumed.train()
    for (name, a), (_, b) in zip(whole.trainable, resumed.trainable, strict=True):
        assert torch.equal(a, b), name
    rows = [read_jsonl(p / "metrics.jsonl") for p in (tmp_path / "whole", tmp_path / "half")]
    # training rows match value for value (the interrupted run also evaluated at its end);
    # seconds and the process's peak memory are measurements of the machine, not of the run
    measured = ("time/", "memory/")
    train_rows = [
        [{k: v for k, v in r.items() if not k.startswith(measured)} for r in x]
        for x in ([r for r in x if "reward_mean" in r] for x in rows)
    ]
    assert len(train_rows[0]) == 2 and train_rows[0] == train_rows[1]
    # the trained run loads for sampling
    policy = policy_from_run(tmp_path / "half")
    state = dict(policy.transformer.named_parameters())
    for name, p in resumed.trainable:
        assert torch.equal(state[name], p.detach())


def test_resume_refuses_changed_settings_and_names_a_corrupt_checkpoint(data_dir, tmp_path):
    run = tmp_path / "run"
    GRPOTrainer(tiny("overfit", data_dir, "checkpoint.every=1", "steps=2"), run).train()
    with pytest.raises(ValueError, match=r"rl.kl_beta \(0.0 -> 0.5\)"):
        GRPOTrainer(tiny("overfit", data_dir, "steps=3", "rl.kl_beta=0.5"), run, resume="auto")
    checkpoints = sorted((run / "checkpoints").iterdir())
    assert [p.name for p in checkpoints] == ["step_000001", "step_000002"]
    earlier = (checkpoints[0] / "trainable.safetensors").read_bytes()
    state = checkpoints[1] / "state.pt"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(ValueError, match="state.pt: corrupt or truncated"):
        GRPOTrainer(tiny("overfit", data_dir, "steps=3"), run, resume="auto")
    assert (checkpoints[0] / "trainable.safetensors").read_bytes() == earlier
    with pytest.raises(FileNotFoundError, match="no checkpoint folder"):
        GRPOTrainer(tiny("overfit", data_dir), run, resume=str(tmp_path / "nothing"))


def test_gradient_accumulation_1x8_equals_8x1(data_dir, tmp_path):
    more = ("sampling.group_size=4", "sampling.conditions_per_step=2", "rl.inner_epochs=1")
    trainer = GRPOTrainer(tiny("overfit", data_dir, *more, "data.train_items=2"), tmp_path)
    roll = trainer.rollout(0)
    roll.active = trainer.active_rewards(0)
    roll.video = trainer.decode(roll)
    trainer.score(roll)
    assert roll.sample_mask.sum() > 0
    start = [p.detach().clone() for _, p in trainer.trainable]  # same weights for both
    optimizer_state = trainer.optimizer.state_dict()
    results = []
    for micro in (8, 1):
        with torch.no_grad():
            for (_, p), s in zip(trainer.trainable, start, strict=True):
                p.copy_(s)
        trainer.optimizer.load_state_dict(optimizer_state)
        trainer.config.sampling.micro_batch_size = micro
        trainer.optimizer.zero_grad()
        trainer.update(roll, 0)  # one optimizer step; the accumulated gradient stays in .grad
        results.append(torch.cat([p.grad.flatten() for _, p in trainer.trainable]))
    scale = float(results[0].abs().max())
    assert scale > 0
    torch.testing.assert_close(results[1], results[0], rtol=1e-4, atol=1e-5 * scale)


def test_masked_samples_get_no_advantage_and_leave_their_group(data_dir, tmp_path):
    trainer = GRPOTrainer(tiny("overfit", data_dir, "sampling.group_size=4"), tmp_path)
    roll = trainer.rollout(0)
    roll.active = trainer.active_rewards(0)
    roll.video = trainer.decode(roll)
    roll.video[1] = float("nan")  # one broken sample: the reward masks it
    trainer.score(roll)
    assert roll.reward_valid[0, :, 0].tolist() == [True, False, True, True]
    assert float(roll.advantages[1]) == 0.0 and not bool(roll.sample_mask[1])
    kept = roll.rewards[0, [0, 2, 3], 0]
    expected = (kept - kept.mean()) / kept.std(unbiased=False)
    torch.testing.assert_close(roll.advantages[[0, 2, 3]].double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_overfit_recipe_raises_its_reward_and_the_truth(tmp_path, data_dir):
    """The debugging recipe with its defaults: its reward on its one condition must rise by a
    clear margin (0.0216 measured); the true-target PSNR is reported beside it."""
    config = load_config(
        "overfit",
        overrides=[f"data.data_dir={data_dir}", "logging.tensorboard=false", "eval.every=0"],
    )
    summary = GRPOTrainer(config, tmp_path).train()
    change = summary["changes"]
    assert change["train/reward/view_fidelity"]["change"] > 0.005, change
    assert change["train/truth/psnr"]["n"] == 1, change


def test_config_errors_name_what_to_set(data_dir, tmp_path):
    with pytest.raises(ValueError, match="known are .*geo_align"):
        load_config("no_such_recipe")
    with pytest.raises(ValueError, match="kl_bta.*known keys here: .*kl_beta"):
        load_config("overfit", overrides=["rl.kl_bta=0.1"])
    with pytest.raises(ValueError, match="group_size: GRPO needs at least 2"):
        load_config("overfit", overrides=["sampling.group_size=1"])
    with pytest.raises(ValueError, match="frames: must be 4k \\+ 1"):
        load_config("overfit", overrides=["data.frames=6"])
    with pytest.raises(ValueError, match="no full-scale file"):
        load_config("overfit", scale="full")
    with pytest.raises(ValueError, match="reward: unknown name 'trajectroy'; known are"):
        GRPOTrainer(tiny("overfit", data_dir, "rewards.rewards=[{name: trajectroy}]"), tmp_path)
    with pytest.raises(ValueError, match="only tinygeo has one"):
        GRPOTrainer(tiny("vggrpo", data_dir, "rewards.estimator=classical"), tmp_path / "latent")
    with pytest.raises(ValueError, match="'camera' selects no parameter"):
        GRPOTrainer(tiny("vggrpo", data_dir, "model.trainable=camera"), tmp_path / "camera")
    with pytest.raises(ValueError, match="ADEVIS builds reproj_v2v conditions"):
        GRPOTrainer(tiny("geo_align", data_dir, "data.adevis_strategies=[rva]"), tmp_path / "a")
    with pytest.raises(ValueError, match="does not condition a t2v"):
        GRPOTrainer(tiny("vggrpo", data_dir, "data.kind=pairs"), tmp_path / "kind")
    assert set(recipe_names()) >= {"geo_align", "devis_grpo", "vggrpo", "world_r1", "overfit"}


def test_cli_train_and_config_show(data_dir, tmp_path, capsys):
    from geogrpo.cli import main

    assert main(["config", "show", "--recipe", "geo_align", "--set", "rl.kl_beta=0.5"]) == 0
    shown = capsys.readouterr().out
    assert "kl_beta: 0.5" in shown and "# weight of the KL" in shown
    out = tmp_path / "run"
    args = ["train", "--recipe", "overfit", "--out", str(out)]
    args += [a for s in (*TINY, f"data.data_dir={data_dir}") for a in ("--set", s)]
    assert main(args) == 0
    rows = read_jsonl(out / "metrics.jsonl")
    needed = {"step", "reward_mean", "reward/view_fidelity", "kl", "clip_frac", "ratio_max"}
    needed |= {"grad_norm", "lr", "time/rollout", "time/decode", "time/reward", "time/update"}
    assert needed <= set([r for r in rows if "reward_mean" in r][-1])
    assert (out / "curves.png").is_file() and json.loads((out / "summary.json").read_text())
    assert main(args) == 2  # a used --out without --resume
    assert "pass --resume auto" in capsys.readouterr().err
    assert main(["train", "--recipe", "nope", "--out", str(tmp_path / "x")]) == 2


def test_config_layers_recipe_file_and_set(tmp_path):
    """Defaults <- recipe <- --config file <- --set, each key mapping onto one field."""
    extra = tmp_path / "mine.yaml"
    extra.write_text("rl:\n  kl_beta: 0.01\nsampling:\n  group_size: 4\n", encoding="utf-8")
    config = load_config("vggrpo", config_file=extra, overrides=["sampling.group_size=6"])
    assert config.rl.kl_beta == 0.01  # the file over the recipe's 0.004
    assert config.sampling.group_size == 6  # --set over the file
    assert config.rewards.rewards[0].options == {"source": "latent"}  # the recipe's
    assert config.optim.warmup_steps == 0  # a default
    full = ("geo_align", "full")
    assert load_config(*full).rewards.estimator_options["model_dir"]
    # --set replaces a dict (switching estimators must drop the adapter's options) ...
    assert (
        load_config(*full, overrides=["rewards.estimator_options={}"]).rewards.estimator_options
        == {}
    )
    # ... and sets one key of it
    options = load_config(*full, overrides=["rewards.estimator_options.device=cpu"])
    assert options.rewards.estimator_options["device"] == "cpu"
    assert options.rewards.estimator_options["model_dir"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("rl: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.yaml: not a readable YAML config"):
        load_config("vggrpo", config_file=bad)
    with pytest.raises(FileNotFoundError, match="no file"):
        load_config("vggrpo", config_file=tmp_path / "none.yaml")
    with pytest.raises(ValueError, match="expected section.field=value"):
        load_config("vggrpo", overrides=["rl.kl_beta"])


def test_watchdog_warns_when_the_fixed_outputs_drift_from_the_base(data_dir, tmp_path, capsys):
    trainer = GRPOTrainer(tiny("overfit", data_dir, "logging.watchdog_tolerance=0.3"), tmp_path)
    video = torch.full((2, 5, 16, 16, 3), 0.5)
    video[..., 0] = 0.6  # a little colour
    base = {f"eval/val/watchdog/{k}": v for k, v in watchdog_stats(video).items()}
    trainer.evals[0] = {"metrics": base}
    same = dict(base)
    trainer._warn_on_drift(4, same)
    assert not any("warn_" in k for k in same)
    video[..., 0] = 1.0  # saturated: the kind of drift a hacked reward causes
    drifted = {f"eval/val/watchdog/{k}": v for k, v in watchdog_stats(video).items()}
    trainer._warn_on_drift(4, drifted)
    assert drifted["eval/val/watchdog/warn_saturation"] == 1.0
    assert "warn_high_frequency" not in " ".join(drifted)  # a flat image stays flat
    assert "saturation of the fixed val outputs moved" in capsys.readouterr().out


def test_demo_runs_end_to_end_and_refuses_a_used_folder(data_dir, tmp_path, capsys, monkeypatch):
    """`make demo`'s command, shrunk: it trains, prints base vs trained with the truth, and
    replaces an earlier demo only with --overwrite."""
    from geogrpo import cli

    shrink = [s for s in TINY if not s.startswith(("eval.", "steps"))]
    shrink += ["eval.val_conditions=1", "eval.train_conditions=1", f"data.data_dir={data_dir}"]
    monkeypatch.setattr(cli, "DEMO_SETTINGS", (*cli.DEMO_SETTINGS, *shrink))
    out = tmp_path / "demo"
    assert cli.main(["demo", "--steps", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "val/truth/psnr" in printed and "val/reward/view_fidelity" in printed
    assert (out / "summary.json").is_file() and any((out / "checkpoints").iterdir())
    assert f"report (tables, reward and truth curves, videos): {out / 'report.html'}" in printed
    assert "val/truth/psnr" in (out / "report.html").read_text()
    assert cli.main(["demo", "--steps", "1", "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert cli.main(["demo", "--steps", "1", "--out", str(out), "--overwrite"]) == 0


def test_spearman_averages_ties_and_is_nan_for_a_constant_group():
    from geogrpo.train.trainer import spearman

    assert spearman(torch.tensor([1.0, 2, 3]), torch.tensor([10.0, 20, 30])) == pytest.approx(1)
    assert spearman(torch.tensor([1.0, 2, 3]), torch.tensor([3.0, 2, 1])) == pytest.approx(-1)
    # ranks [1, 2.5, 2.5, 4] and [1, 3, 2, 4]: Pearson of the ranks = 4.5 / sqrt(4.5 * 5)
    tied = spearman(torch.tensor([1.0, 2, 2, 3]), torch.tensor([1.0, 3, 2, 4]))
    assert tied == pytest.approx(4.5 / (4.5 * 5) ** 0.5)
    assert spearman(torch.ones(4), torch.arange(4.0)) != spearman(torch.ones(4), torch.arange(4.0))
