"""The trainer over several processes (gloo on the CPU, two ranks spawned here): the same global
batch gives the same update as one process, a group split over ranks gets the advantages it gets
on one, a checkpoint written by two ranks resumes on one, and bad set-ups fail clearly."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import traceback

import pytest
import torch
import torch.multiprocessing as mp
from diffusers import WanTransformer3DModel

from geogrpo.train.config import load_config
from geogrpo.train.distributed import (
    check_world_size,
    close_distributed,
    full_tensor,
    shard_rows,
)
from geogrpo.train.logging import read_jsonl
from geogrpo.train.trainer import GRPOTrainer
from tests.train.test_trainer import TINY, tiny

# One group of 4 split 2 + 2 over the ranks; micro-batches of 1 make every sample's forward the
# same computation in both layouts, so rollouts and rewards match bit for bit and only the order
# of the gradient sums differs.
SPLIT = (
    "sampling.group_size=4",
    "sampling.conditions_per_step=1",
    "sampling.micro_batch_size=1",
    "rl.inner_epochs=2",
    "distributed.timeout_s=120",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, job: str, args: tuple, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    try:
        result = JOBS[job](*args)
    except Exception as err:  # handed back to the test, which asserts on it
        result = {"error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()}
    finally:
        close_distributed()
    torch.save(result, os.path.join(out, f"rank{rank}.pt"))


def spawn(job: str, args: tuple, tmp_path, world: int = 2) -> list:
    """Run ``JOBS[job](*args)`` on ``world`` gloo ranks; each rank's result, in rank order."""
    out = tmp_path / f"results_{job}"
    out.mkdir()
    mp.spawn(_worker, args=(world, free_port(), job, args, str(out)), nprocs=world, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(world)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def _count_allreduces(trainer: GRPOTrainer) -> list[int]:
    """A DDP comm hook counting the buckets all-reduced (the tiny adapters fit in one)."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    calls = [0]

    def hook(state, bucket):
        calls[0] += 1
        return default_hooks.allreduce_hook(state, bucket)

    trainer.policy.transformer.register_comm_hook(None, hook)
    return calls


def _one_step(config, run_dir: str) -> dict:
    trainer = GRPOTrainer(config, run_dir)
    ddp = trainer.ctx.enabled and config.distributed.strategy == "ddp"
    allreduces = _count_allreduces(trainer) if ddp else [0]
    before = {n: full_tensor(p.detach()).clone() for n, p in trainer.trainable}
    evaluation = trainer.evaluate(0)["per_condition"]
    roll, _ = trainer.collect(0)
    trainer.update(roll, 0)
    weights = {n: full_tensor(p.detach()).clone() for n, p in trainer.trainable}
    return {
        "advantages": roll.advantages[: roll.shard.real].clone(),
        "rewards": roll.rewards.clone(),
        "weights": weights,
        "before": before,
        "evaluation": evaluation,
        "rank": trainer.ctx.rank,
        "world": trainer.ctx.world_size,
        "allreduces": allreduces[0],
    }


def _train(config, run_dir: str) -> dict:
    trainer = GRPOTrainer(config, run_dir)
    trainer.train()
    return {"weights": {n: full_tensor(p.detach()).clone() for n, p in trainer.trainable}}


def _construct(config, run_dir: str) -> dict:
    GRPOTrainer(config, run_dir)
    return {}


JOBS = {"one_step": _one_step, "train": _train, "construct": _construct}


def check_ok(results: list) -> None:
    for r in results:
        assert "error" not in r, r.get("trace")


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_ranks_make_the_update_of_one_process(strategy, data_dir, tmp_path):
    evaluated = ("eval.val_conditions=3", "eval.train_conditions=1", "eval.videos=0")
    config = tiny("overfit", data_dir, *SPLIT, *evaluated, f"distributed.strategy={strategy}")
    alone = _one_step(config, str(tmp_path / "alone"))
    ranks = spawn("one_step", (config, str(tmp_path / "two")), tmp_path)
    check_ok(ranks)
    assert [r["world"] for r in ranks] == [2, 2]
    # 3 val conditions shared 2 + 1 evaluate as on one process
    assert len(alone["evaluation"]["val"]["truth/psnr"]) == 3
    assert ranks[0]["evaluation"] == alone["evaluation"] == ranks[1]["evaluation"]
    # the group of 4 is split 2 + 2, yet each rank normalised over the whole group
    torch.testing.assert_close(ranks[0]["rewards"], alone["rewards"], rtol=0, atol=0)
    split = torch.cat([r["advantages"] for r in ranks])
    assert split.shape == (4,) and ranks[0]["advantages"].shape == (2,)
    torch.testing.assert_close(split, alone["advantages"], rtol=0, atol=0)
    assert float(split.abs().sum()) > 0
    # Adam's first step is about lr x sign(gradient); gradients summed in another order differ
    # in the last bits, so the weights may differ by a sliver of one step where a gradient is ~0
    tolerance = 1e-3 * config.optim.lr
    moved = 0.0
    for name, value in alone["weights"].items():
        torch.testing.assert_close(ranks[0]["weights"][name], value, rtol=0, atol=tolerance)
        torch.testing.assert_close(ranks[1]["weights"][name], value, rtol=0, atol=tolerance)
        moved += float((value - alone["before"][name]).abs().sum())
    assert moved > 0  # the step changed the weights, so equal weights mean equal updates
    if strategy == "ddp":  # one all-reduce per optimizer step, not per micro-batch and step
        optimizer_steps = config.rl.inner_epochs * config.rl.minibatches
        assert [r["allreduces"] for r in ranks] == [optimizer_steps] * 2


def test_a_checkpoint_of_two_fsdp_ranks_resumes_on_one(data_dir, tmp_path):
    settings = (*SPLIT, "steps=2", "checkpoint.every=1", "distributed.strategy=fsdp")
    config = tiny("overfit", data_dir, *settings)
    run = tmp_path / "two"
    ranks = spawn("train", (config, str(run)), tmp_path)
    check_ok(ranks)
    sharded = run / "checkpoints" / "step_000001" / "sharded"
    written = sorted(p.name for p in sharded.iterdir() if p.suffix == ".distcp")
    assert len(written) == 2, written  # each rank wrote its shard of the optimizer
    resumed_dir = tmp_path / "one"
    shutil.copytree(run, resumed_dir)
    shutil.rmtree(resumed_dir / "checkpoints" / "step_000002")
    resumed = GRPOTrainer(tiny("overfit", data_dir, *settings), resumed_dir, resume="auto")
    assert resumed.step == 1 and resumed.ctx.world_size == 1
    adam = next(iter(resumed.optimizer.state.values()))  # 2 inner epochs: 2 optimizer steps
    assert float(adam["step"]) == 2.0 and float(adam["exp_avg_sq"].abs().sum()) > 0
    resumed.train()
    for name, p in resumed.trainable:
        torch.testing.assert_close(
            p.detach(), ranks[0]["weights"][name], rtol=0, atol=2e-3 * config.optim.lr
        )


def test_ranks_with_different_settings_fail_and_rank_0_names_them(data_dir, tmp_path):
    configs = [tiny("overfit", data_dir, *SPLIT, f"rl.kl_beta={b}") for b in (0.0, 0.5)]
    out = tmp_path / "results_construct"
    out.mkdir()
    port = free_port()
    procs = [
        mp.get_context("spawn").Process(
            target=_worker,
            args=(r, 2, port, "construct", (configs[r], str(tmp_path / "run")), str(out)),
        )
        for r in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    results = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert "rl.kl_beta (0.0 on rank 0, 0.5)" in results[0]["error"]
    assert "rank 0 names them" in results[1]["error"]


def test_a_missing_rank_is_a_clear_error_not_a_hang(tmp_path):
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "RANK": "0",
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "0",
    }
    code = "from geogrpo.train.distributed import init_distributed; init_distributed(timeout_s=3)"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "rank 0 of 2 could not meet the other ranks" in done.stderr
    assert "distributed.timeout_s = 3 s" in done.stderr
    env.pop("MASTER_ADDR")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert "MASTER_ADDR not set; start every rank with torchrun" in done.stderr


def test_torchrun_trains_from_the_command_line_and_writes_one_log(tmp_path):
    out = tmp_path / "run"
    overrides = [*TINY, *SPLIT, "steps=2", "checkpoint.every=1", "distributed.strategy=fsdp"]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--master-port", str(free_port()), "-m", "geogrpo", "train", "--recipe"]
    command += ["overfit", "--out", str(out), f"--set=data.data_dir={tmp_path / 'data'}"]
    command += [f"--set={o}" for o in overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in rows if "reward_mean" in r] == [1, 2]  # rank 0 alone logs
    assert done.stdout.count("wrote ") == 1  # rank 0 alone reports
    shards = list((out / "checkpoints" / "step_000002" / "sharded").glob("*.distcp"))
    assert len(shards) == 2


def test_full_scale_precision_settings_train_a_tiny_policy(data_dir, tmp_path):
    """bf16 autocast, a bf16 frozen base under float32 adapters, gradient checkpointing."""
    more = ("model.mixed_precision=bf16", "model.base_dtype=bfloat16")
    trainer = GRPOTrainer(
        tiny("overfit", data_dir, *more, "model.gradient_checkpointing=true"), tmp_path
    )
    dtypes = {n: p.dtype for n, p in trainer.policy.transformer.named_parameters()}
    assert {dtypes[n] for n, _ in trainer.trainable} == {torch.float32}
    frozen = {dtypes[n] for n in dtypes if "lora_" not in n}
    assert frozen == {torch.bfloat16, torch.float32}  # norms, time embedding stay float32
    keep = set(WanTransformer3DModel._keep_in_fp32_modules)  # norm1..3, time embedding, ...
    assert all(dtypes[n] == torch.float32 for n in dtypes if keep & set(n.split(".")))
    assert any(dtypes[n] == torch.bfloat16 for n in dtypes if "to_q.base_layer" in n)
    before = [p.detach().clone() for _, p in trainer.trainable]
    row = trainer.train_step(0)
    assert math.isfinite(row["loss"]) and row["grad_norm"] > 0
    changed = [not torch.equal(b, p) for b, (_, p) in zip(before, trainer.trainable, strict=True)]
    assert any(changed)


def test_the_trainer_loads_the_policy_with_the_configured_conditioning(data_dir, tmp_path):
    trainer = GRPOTrainer(tiny("world_r1", data_dir, "model.conditioning=t2v"), tmp_path)
    assert trainer.policy.conditioning.name == "t2v"  # the shipped policy says warped_noise_t2v


def test_shards_cover_the_batch_in_order_with_equal_sizes():
    for total in (1, 4, 7, 16):
        for world in range(1, total + 1):
            shards = [shard_rows(total, r, world) for r in range(world)]
            assert len({s.size for s in shards}) == 1
            real = [i for s in shards for i in s.rows()[: s.real]]
            assert real == list(range(total))
            assert all(len(s.rows()) == s.size and max(s.rows()) < total for s in shards)


def test_a_world_that_cannot_give_every_rank_a_sample_is_refused():
    check_world_size(2, 1, 2)
    check_world_size(8, 2, 4)
    with pytest.raises(ValueError, match=r"3 ranks cannot share .* = 1 x 2 = 2 videos"):
        check_world_size(3, 1, 2)
    with pytest.raises(ValueError, match="cpu_offload: moves a GPU run's weights"):
        load_config("overfit", overrides=["distributed.strategy=fsdp", "distributed.cpu_offload=1"])
    with pytest.raises(ValueError, match="cpu_offload: needs distributed.strategy: fsdp"):
        load_config("overfit", overrides=["model.device=cuda", "distributed.cpu_offload=true"])
