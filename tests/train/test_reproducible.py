"""Reproducibility (issue 26): a trained run's weights reloaded in a fresh process sample the
same bits as the trained policy in memory (and not the base model's), two runs of one config
and seed log the same metrics on the CPU, and ``train.deterministic`` sets its knobs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from geogrpo.models.policy import VideoPolicy
from geogrpo.train.config import load_config
from geogrpo.train.logging import read_jsonl
from geogrpo.train.trainer import GRPOTrainer
from tests.train.test_trainer import TINY

ROOT = Path(__file__).resolve().parents[2]


def config(data_dir, *more: str):
    return load_config("overfit", overrides=[*TINY, f"data.data_dir={data_dir}", *more])


def sample(policy: VideoPolicy, data_dir: str) -> torch.Tensor:
    """One ODE sample of the run's training condition, seed 5."""
    from geogrpo.train.conditions import from_items, load_items
    from geogrpo.train.rollout import generate

    cond = from_items(load_items(config(data_dir).data, "train", 1), policy.conditioning.name)
    f, (h, w) = cond.inputs.num_frames, cond.inputs.image_size
    with torch.no_grad():
        return generate(policy, cond.prompts, f, h, w, 2, seed=5, inputs=cond.inputs)


def sample_from_run(run: str, data_dir: str, out: str) -> None:
    """What the fresh process runs: load the run's newest checkpoint and sample."""
    from geogrpo.train.trainer import policy_from_run

    save_file({"video": sample(policy_from_run(run), data_dir).contiguous()}, out)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def steps_logged(run: Path) -> list[dict]:
    return [
        {k: v for k, v in row.items() if not k.startswith(("time/", "memory/"))}
        for row in read_jsonl(run / "metrics.jsonl")
    ]


def test_a_reloaded_run_samples_the_same_bits_in_a_fresh_process(data_dir, tmp_path):
    run = tmp_path / "run"
    trainer = GRPOTrainer(config(data_dir, "steps=2", "optim.lr=1e-2"), run)
    trainer.train()
    in_memory = sample(trainer.policy.eval(), str(data_dir))
    out = tmp_path / "sample.safetensors"
    code = "import sys; from tests.train.test_reproducible import sample_from_run; "
    code += "sample_from_run(*sys.argv[1:])"
    subprocess.run(
        [sys.executable, "-c", code, str(run), str(data_dir), str(out)],
        cwd=ROOT,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    reloaded = load_file(str(out))["video"]
    assert torch.equal(reloaded, in_memory)
    base = sample(VideoPolicy.from_pretrained("tiny-reproj-v2v").eval(), str(data_dir))
    assert not torch.equal(base, in_memory), "the trained adapters must change the samples"


def test_two_runs_of_one_config_and_seed_log_the_same_metrics(data_dir, tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        GRPOTrainer(config(data_dir, "steps=2"), run).train()
    rows = [steps_logged(run) for run in runs]
    assert len(rows[0]) >= 3 and rows[0] == rows[1]


def test_the_deterministic_switch_sets_every_process_wide_knob(monkeypatch):
    """``train.deterministic``; process-wide, so the defaults are put back afterwards."""
    from geogrpo.train.trainer import make_deterministic

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    cuda = torch.backends.cuda
    kernels = ("flash", "mem_efficient", "cudnn")
    before = [getattr(cuda, f"{k}_sdp_enabled")() for k in kernels]
    try:
        make_deterministic()
        assert torch.are_deterministic_algorithms_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert not any(getattr(cuda, f"{k}_sdp_enabled")() for k in kernels)
        assert cuda.math_sdp_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
        for kernel, on in zip(kernels, before, strict=True):
            getattr(cuda, f"enable_{kernel}_sdp")(on)
