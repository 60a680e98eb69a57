"""Soak (issue 26): a longer embedded GRPO run, once uninterrupted and once SIGKILLed every few
steps and resumed with ``--resume auto``. The resident memory of the training process is
sampled twice a second; its slope against the step (MiB a step, start-up steps left out, each
process its own intercept) says whether memory grows, and the two runs' final weights must be
equal bit for bit.

    python bench/soak.py --steps 40 --cycle 8
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import time
from pathlib import Path

from kill_resume import check_checkpoints, final_weights, launch, same_weights


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def steps_logged(out: Path) -> int:
    """Training rows in the run's log (the last step done)."""
    path = out / "metrics.jsonl"
    if not path.is_file():
        return 0
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip().endswith("}")]
    return max((r["step"] for r in rows if "reward_mean" in r), default=0)


def segment(
    out: Path, data: Path, steps: int, kill_after: int | None, rng: random.Random
) -> list[tuple[int, float]]:
    """One process: (step, RSS MiB) samples until it ends, or until ``kill_after`` more steps are
    done (then SIGKILL after a random 0-2 s)."""
    proc = launch(out, data, steps)
    first, samples, deadline = steps_logged(out), [], None
    while proc.poll() is None:
        rss, step = rss_mib(proc.pid), steps_logged(out)
        if rss is not None:
            samples.append((step, rss))
        if kill_after is not None and deadline is None and step >= first + kill_after:
            deadline = time.monotonic() + rng.uniform(0, 2)
        if deadline is not None and time.monotonic() >= deadline:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.5)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise RuntimeError(f"{out}: exit {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
    return samples


def slope(segments: list[list[tuple[int, float]]], skip: int = 2) -> float:
    """MiB a step: least squares of RSS on step, pooled over segments with one intercept each;
    each segment's first ``skip`` steps (start-up, first allocations) are left out."""
    num = den = 0.0
    for samples in segments:
        if not samples:
            continue
        start = samples[0][0]
        kept = [(s, r) for s, r in samples if s >= start + skip]
        if len(kept) < 2:
            continue
        ms = sum(s for s, _ in kept) / len(kept)
        mr = sum(r for _, r in kept) / len(kept)
        num += sum((s - ms) * (r - mr) for s, r in kept)
        den += sum((s - ms) ** 2 for s, _ in kept)
    return num / den if den else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--cycle", type=int, default=8, help="steps between kills")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/soak")
    args = parser.parse_args()
    work, rng = Path(args.work), random.Random(args.seed)
    shutil.rmtree(work, ignore_errors=True)
    data = work / "data"
    t0 = time.monotonic()
    whole = segment(work / "whole", data, args.steps, None, rng)
    t_whole = time.monotonic() - t0
    segments, kills = [], 0
    while True:
        samples = segment(work / "killed", data, args.steps, args.cycle, rng)
        segments.append(samples)
        check_checkpoints(work / "killed")
        if (work / "killed" / "summary.json").is_file():
            break
        kills += 1
    same = same_weights(*(final_weights(work / n, args.steps) for n in ("whole", "killed")))
    peak = max(r for _, r in whole)
    print(
        f"uninterrupted: {args.steps} steps in {t_whole:.0f} s, RSS peak {peak:.0f} MiB, "
        f"slope {slope([whole]):+.3f} MiB/step (steps 3-{args.steps})"
    )
    print(
        f"killed and resumed: {kills} kills, {len(segments)} processes, pooled slope "
        f"{slope(segments):+.3f} MiB/step; final weights equal: {same}"
    )
    print(f"{time.monotonic() - t0:.0f} s in all")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
