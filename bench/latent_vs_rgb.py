"""VGGRPO's latent vs RGB rewards: time and peak memory per batch, side by side (issue 25).

    python bench/latent_vs_rgb.py [--repeats 5] [--threads 1] [--profile] [--baseline SRC]

One batch the size the ``vggrpo`` recipe scores (N x G clips of its conditions x group size), as
latents of val clips from the tiny autoencoder. Both paths score smoothness + reprojection:

* ``rgb``: decode the latents (in the trainer's micro-batches), tinygeo on the frames;
* ``latent``: the Latent Geometry Model on the latents, no decode.

Each path lives in its own worker process (so that each one's peak resident memory above its
baseline after loading is its own); the parent asks them in turn, A B B A A B ..., after one
warm-up each, and prints the median seconds per batch by phase, the peak memory and the ratio
against issue 25's target (latent <= 0.5x RGB). ``--profile`` adds each path's top operators
(``torch.profiler``, one batch). ``--baseline SRC`` also runs both paths from another
checkout's ``src`` (e.g. ``git worktree add /tmp/before <commit>``), in the same rotation, so
that a change is measured against its parent side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch

PATHS = ("rgb", "latent")
PHASES = ("decode", "estimate", "smoothness", "reprojection")
TARGET = 0.5  # issue 25: latent <= 0.5x RGB time


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class Worker:
    """One path's models and rewards, scoring the same latents on request."""

    def __init__(self, path: str, latents_file: str, micro_batch: int) -> None:
        from geogrpo.models.autoencoder import load_autoencoder
        from geogrpo.models.policy import PRETRAINED_DIR
        from geogrpo.perception.latent import LatentGeometryEstimator
        from geogrpo.perception.tinygeo import TinyGeoEstimator
        from geogrpo.rewards.geometry import ReprojectionReward, SmoothnessReward

        self.path, self.micro_batch = path, micro_batch
        self.latents = torch.load(latents_file)  # [B, C, k + 1, h, w]
        self.autoencoder = load_autoencoder(PRETRAINED_DIR / "tiny-autoencoder").eval()
        est = LatentGeometryEstimator() if path == "latent" else TinyGeoEstimator()
        self.rewards = [
            SmoothnessReward(est, source=path),
            ReprojectionReward(est, source=path),
        ]
        self.baseline_mb = peak_rss_mb()

    def score(self) -> dict[str, float]:
        """Seconds by phase of one batch (the estimate is the first reward's cache miss)."""
        from geogrpo.rewards.base import RewardBatch, estimate_geometry
        from geogrpo.rewards.geometry import estimate_latent_geometry
        from geogrpo.utils.video import model_to_frames

        times = {}
        with torch.no_grad():
            t = time.perf_counter()
            if self.path == "latent":
                batch = RewardBatch(latents=self.latents)
            else:
                chunks = [self.autoencoder.decode(x) for x in self.latents.split(self.micro_batch)]
                batch = RewardBatch(video=model_to_frames(torch.cat(chunks)))
            times["decode"] = time.perf_counter() - t
            t = time.perf_counter()
            est = self.rewards[0].estimator
            if self.path == "latent":
                estimate_latent_geometry(batch, est)
            else:
                estimate_geometry(batch, est)
            times["estimate"] = time.perf_counter() - t
            for reward in self.rewards:
                t = time.perf_counter()
                out = reward(batch)
                times[reward.name] = time.perf_counter() - t
                if not bool(out.valid.all()):
                    raise RuntimeError(f"{self.path} {reward.name}: masked {out.reasons}")
        times["total"] = sum(times.values())
        times["peak_mb"] = peak_rss_mb() - self.baseline_mb
        return times

    def profile(self, rows: int = 12) -> str:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            self.score()
        return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def serve(path: str, latents_file: str, micro_batch: int, threads: int) -> None:
    """Worker loop: one JSON line out for each command line in (``score`` / ``profile``)."""
    torch.set_num_threads(threads)
    worker = Worker(path, latents_file, micro_batch)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "score":
            print(json.dumps(worker.score()), flush=True)
        elif command == "profile":
            print(json.dumps({"table": worker.profile()}), flush=True)
        else:
            raise ValueError(f"command: expected 'score' or 'profile', got {command!r}")


def batch_latents(recipe: str) -> tuple[torch.Tensor, int]:
    """Latents ``[N G, C, k + 1, h, w]`` of val clips, as many as ``recipe`` scores a step, and
    its decode micro-batch."""
    from geogrpo.models.autoencoder import load_autoencoder
    from geogrpo.models.policy import PRETRAINED_DIR
    from geogrpo.pretrain.common import load_clips
    from geogrpo.pretrain.lgm import encode_clips
    from geogrpo.train.config import load_config

    sampling = load_config(recipe).sampling
    n = sampling.group_size * sampling.conditions_per_step
    ae = load_autoencoder(PRETRAINED_DIR / "tiny-autoencoder").eval()
    clips = load_clips("val", (n + 1) // 2, 17, 96, "data")["video"][:n]  # two views a pair
    return encode_clips(ae, clips), sampling.micro_batch_size


def ask(proc: subprocess.Popen, command: str) -> dict:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"worker exited (code {proc.wait()}) after {command!r}")
    return json.loads(line)


def compare(
    recipe: str, repeats: int, threads: int, show_profile: bool, baseline: str | None
) -> None:
    latents, micro_batch = batch_latents(recipe)
    versions = {"": None} if baseline is None else {"before: ": baseline, "": None}
    keys = [(v, p) for v in versions for p in PATHS]
    runs: dict[tuple[str, str], list[dict[str, float]]] = {k: [] for k in keys}
    with tempfile.TemporaryDirectory() as tmp:
        latents_file = f"{tmp}/latents.pt"
        torch.save(latents, latents_file)
        procs = {}
        for version, path in keys:
            env = dict(os.environ)
            if versions[version] is not None:  # that checkout's geogrpo first on the path
                env["PYTHONPATH"] = os.pathsep.join([versions[version], env.get("PYTHONPATH", "")])
            command = [sys.executable, __file__, "--worker", path, "--latents", latents_file]
            command += ["--micro-batch", str(micro_batch), "--threads", str(threads)]
            procs[version, path] = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
        try:
            for proc in procs.values():
                assert proc.stdout is not None
                json.loads(proc.stdout.readline())  # ready
                ask(proc, "score")  # warm-up
            for r in range(repeats):  # A B C D, then D C B A, ...
                for key in keys if r % 2 == 0 else keys[::-1]:
                    runs[key].append(ask(procs[key], "score"))
            tables = {k: ask(procs[k], "profile")["table"] for k in keys} if show_profile else {}
        finally:
            for proc in procs.values():
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait()
    report(latents, runs, threads, tables)


def report(
    latents: torch.Tensor,
    runs: dict[tuple[str, str], list[dict[str, float]]],
    threads: int,
    tables: dict[tuple[str, str], str],
) -> None:
    med = {k: {x: statistics.median(r[x] for r in v) for x in v[0]} for k, v in runs.items()}
    peak = {k: max(r["peak_mb"] for r in v) for k, v in runs.items()}
    b, n = latents.shape[0], len(next(iter(runs.values())))
    print(
        f"smoothness + reprojection on {b} clips (latents {tuple(latents.shape[1:])}), "
        f"{threads} thread(s), medians of {n} interleaved batches, seconds a batch"
    )
    print("| path | " + " | ".join(PHASES) + " | total | s per clip | peak memory |")
    print("|---|" + "---|" * (len(PHASES) + 3))
    names = {"rgb": "decode + tinygeo", "latent": "latents + LGM"}
    for (version, path), m in med.items():
        cells = " | ".join(f"{m[x]:.3f}" for x in PHASES)
        print(
            f"| {version}{names[path]} | {cells} | {m['total']:.3f} | {m['total'] / b:.4f} "
            f"| +{peak[version, path]:.0f} MB |"
        )
    for version in dict.fromkeys(v for v, _ in runs):
        lat, rgb = (version, "latent"), (version, "rgb")
        pairs = [x["total"] / y["total"] for x, y in zip(runs[lat], runs[rgb], strict=True)]
        ratio = med[lat]["total"] / med[rgb]["total"]
        print(
            f"{version}latent / RGB: time {ratio:.2f} (ratio of medians; per batch pair "
            f"{min(pairs):.2f}-{max(pairs):.2f}), memory {peak[lat] / max(peak[rgb], 1e-9):.2f}; "
            f"target <= {TARGET} {'met' if ratio <= TARGET else 'NOT met'}"
        )
    print("(VGGRPO at full scale: 41.33 / 54.73 s = 0.76, 68.57 / 76.80 GB = 0.89)")
    for (version, path), table in tables.items():
        print(f"\n{version}{names[path]}: one batch under torch.profiler\n{table}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="vggrpo", help="whose batch size and micro-batch")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch threads in each worker")
    p.add_argument("--profile", action="store_true", help="print each path's top operators")
    p.add_argument("--baseline", help="another checkout's src folder to run side by side")
    p.add_argument("--worker", choices=PATHS, help=argparse.SUPPRESS)
    p.add_argument("--latents", help=argparse.SUPPRESS)
    p.add_argument("--micro-batch", type=int, default=8, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.repeats < 1 or args.threads < 1:
        raise ValueError(
            f"--repeats and --threads: expected >= 1, got {args.repeats}, {args.threads}"
        )
    if args.worker:
        serve(args.worker, args.latents, args.micro_batch, args.threads)
    else:
        compare(args.recipe, args.repeats, args.threads, args.profile, args.baseline)


if __name__ == "__main__":
    main()
