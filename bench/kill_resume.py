"""SIGKILL an embedded GRPO run at many points and resume it with ``--resume auto`` each time
(issue 26): after every kill each checkpoint on disk must load whole (files present, sha256 as
its manifest says, the optimizer's shard readable), and the final weights must equal an
uninterrupted run's bit for bit.

Kill points: a random delay after a checkpoint appeared (mid-step, mid-evaluation), a random
delay after launch (start-up, the first steps), and inside a checkpoint write. For the last the
run is launched through a wrapper that pauses after the checkpoint writer's safetensors file
(in this harness only; the package has no such hook), and the kill lands when a
``.tmp_step_*`` folder holds that file but not yet ``state.pt``.

    python bench/kill_resume.py --kills 20 --steps 6

``tests/train/test_crash.py`` runs a short variant (2 kills) of the same harness.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

# The overfit recipe shrunk to seconds a step on 2 cores; a checkpoint after every step, so a
# resumed run starts where the killed one saved last.
SETTINGS = (
    "sampling.group_size=2",
    "sampling.conditions_per_step=1",
    "sampling.num_inference_steps=2",
    "sampling.eval_num_inference_steps=2",
    "sampling.micro_batch_size=2",
    "data.train_items=1",
    "data.workers=1",
    "eval.every=0",
    "eval.train_conditions=0",
    "eval.val_conditions=0",
    "checkpoint.every=1",
    "checkpoint.keep_last=2",
    "logging.tensorboard=false",
    "logging.progress=false",
    "rl.clip_range=10.0",
    "optim.lr=1e-3",
)

# Runs the CLI with the checkpoint writer pausing after its safetensors file.
PAUSING = """
import sys, time
from geogrpo.train import checkpoint
real = checkpoint.save_file
def pausing(*args, **kwargs):
    real(*args, **kwargs)
    time.sleep(float(sys.argv[1]))
checkpoint.save_file = pausing
from geogrpo.cli import main
sys.exit(main(sys.argv[2:]))
"""


def cli_args(out: Path, data_dir: Path, steps: int) -> list[str]:
    sets = (*SETTINGS, f"steps={steps}", f"data.data_dir={data_dir}")
    args = ["train", "--recipe", "overfit", "--out", str(out), "--resume", "auto"]
    return args + [a for s in sets for a in ("--set", s)]


def launch(out: Path, data_dir: Path, steps: int, pause: float = 0.0) -> subprocess.Popen:
    """The CLI in a child process (``python -m geogrpo train``), or through the pausing wrapper."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    head = ["-c", PAUSING, str(pause)] if pause else ["-m", "geogrpo"]
    return subprocess.Popen(
        [sys.executable, *head, *cli_args(out, data_dir, steps)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def saved_steps(out: Path) -> list[str]:
    folder = out / "checkpoints"
    return sorted(p.name for p in folder.glob("step_*")) if folder.is_dir() else []


def mid_write(out: Path) -> bool:
    """A checkpoint is being written: its temporary folder holds the weights, not the state."""
    return any(
        not (tmp / "state.pt").exists()
        for tmp in (out / "checkpoints").glob(".tmp_step_*/")
        if (tmp / "trainable.safetensors").exists()
    )


def run_once(
    out: Path, data_dir: Path, steps: int, kill: tuple[str, float] | None, poll: float = 0.005
) -> str:
    """Launch, and SIGKILL at ``kill``: ``("in_save", pause)``, ``("after_save", delay)`` (that
    many seconds after the next checkpoint appears) or ``("delay", seconds)`` after launch.
    Returns what happened: killed_in_save, killed, or finished (a run that ends first)."""
    how, arg = kill or ("", 0.0)
    proc = launch(out, data_dir, steps, pause=arg if how == "in_save" else 0.0)
    start, before, seen = time.monotonic(), saved_steps(out), None
    while proc.poll() is None:
        now = time.monotonic()
        if how == "in_save" and mid_write(out):
            break
        if how == "after_save" and seen is None and saved_steps(out) != before:
            seen = now
        if (how == "after_save" and seen is not None and now - seen >= arg) or (
            how == "delay" and now - start >= arg
        ):
            break
        time.sleep(poll)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return "killed_in_save" if how == "in_save" else "killed"
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"the run failed on its own (exit {proc.returncode}):\n{err[-3000:]}")
    return "finished"


def check_checkpoints(out: Path) -> int:
    """Every checkpoint folder on disk loads whole; returns how many there are."""
    import torch.distributed.checkpoint as dcp

    from geogrpo.train.checkpoint import SHARDED, list_checkpoints, load_checkpoint

    found = list_checkpoints(out / "checkpoints")
    for path in found:
        load_checkpoint(path)  # every file present, sha256 as the manifest says
        if (path / SHARDED).exists():
            meta = dcp.FileSystemReader(str(path / SHARDED)).read_metadata()
            files = {Path(s.relative_path).name for s in meta.storage_data.values()}
            missing = [f for f in files if not (path / SHARDED / f).is_file()]
            if missing:
                raise AssertionError(f"{path}: the optimizer's shard lacks {missing}")
    return len(found)


def final_weights(out: Path, steps: int) -> dict:
    from geogrpo.train.checkpoint import load_checkpoint

    return load_checkpoint(out / "checkpoints" / f"step_{steps:06d}")[0]


def same_weights(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def kill_and_resume(
    out: Path, data_dir: Path, steps: int, kills: list[tuple[str, float]]
) -> dict[str, int]:
    """Run to ``steps`` through ``kills`` (each followed by ``--resume auto``), checking every
    checkpoint on disk after each kill; counts of what happened."""
    counts = {"killed": 0, "killed_in_save": 0, "finished_early": 0, "launches": 0}
    counts["checkpoints_checked"] = 0
    for kill in kills:
        what = run_once(out, data_dir, steps, kill)
        counts["launches"] += 1
        if what == "finished":
            counts["finished_early"] += 1
            break
        counts[what] += 1
        counts["checkpoints_checked"] += check_checkpoints(out)
    if run_once(out, data_dir, steps, None) != "finished":
        raise AssertionError("the last resume did not finish")
    counts["launches"] += 1
    counts["checkpoints_checked"] += check_checkpoints(out)
    leftovers = sorted(p.name for p in (out / "checkpoints").glob(".tmp_*"))
    if leftovers:
        raise AssertionError(f"temporary folders left after the last resume: {leftovers}")
    return counts


def kill_plan(kills: int, seed: int) -> list[tuple[str, float]]:
    """A third each: inside a checkpoint write, a random delay after a checkpoint, a random delay
    after launch (0-25 s: start-up and the first steps on a busy 2-core machine)."""
    rng = random.Random(seed)
    plan = []
    for i in range(kills):
        kind = ("in_save", "after_save", "delay")[i % 3]
        arg = {"in_save": 1.0, "after_save": rng.uniform(0, 3), "delay": rng.uniform(0, 25)}[kind]
        plan.append((kind, arg))
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/kill_resume")
    args = parser.parse_args()
    work = Path(args.work)
    if work.exists():
        import shutil

        shutil.rmtree(work)
    data = work / "data"
    t0 = time.monotonic()
    if run_once(work / "whole", data, args.steps, None) != "finished":
        raise AssertionError("the uninterrupted run did not finish")
    counts = kill_and_resume(work / "killed", data, args.steps, kill_plan(args.kills, args.seed))
    same = same_weights(
        final_weights(work / "whole", args.steps), final_weights(work / "killed", args.steps)
    )
    print(f"{counts}; final weights equal the uninterrupted run's: {same}")
    print(f"{time.monotonic() - t0:.0f} s")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
