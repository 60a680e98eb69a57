"""`make bench`: every embedded-scale benchmark in one go, and the CPU table of bench/RESULTS.md
rewritten from what they print.

Each benchmark runs as its own process (one torch thread, as the trainer runs here), one after
another, so none slows another down; its output goes verbatim under its heading, with the
machine, the command, the date and the wall time. Every run is also kept in
``bench/results_cpu.json`` (name -> command, machine, date, seconds, exit code, output), so that
``--only`` reruns some and the table still shows the others' last runs. Only the part of
RESULTS.md between the two markers below is rewritten; everything else in the file is kept.

    python bench/run_all.py [--only NAME ...] [--results bench/RESULTS.md] [--list]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from geogrpo.utils.io import atomic_write_json, atomic_write_text

BEGIN = "<!-- make bench: begin (written by bench/run_all.py; edits here are overwritten) -->"
END = "<!-- make bench: end -->"
# name -> (arguments of `python`, what it answers)
BENCHMARKS: dict[str, tuple[list[str], str]] = {
    "sde_marginals": (["bench/sde_marginals.py"], "do the SDE samplers keep the marginals"),
    "warp": (["bench/bench_warp.py"], "noise transport and forward warping, frames/s"),
    "world": (["bench/bench_world.py"], "the procedural world's renderer and evaluator"),
    "splat": (["bench/bench_splat.py"], "Gaussian splats, pure torch"),
    "compute_efficiency": (
        ["bench/compute_efficiency.py", "--repeats", "3", "--policies", "tiny-t2v"],
        "the policy's training step against the matmul peak, eager and compiled",
    ),
    "latent_vs_rgb": (["bench/latent_vs_rgb.py"], "VGGRPO's latent rewards against RGB ones"),
    "phases": (
        ["bench/iteration.py", "phases", "--repeats", "1"],
        "one iteration of every embedded recipe, by phase",
    ),
    "plans": (
        ["bench/iteration.py", "plans", "--repeats", "2"],
        "the methods' step plans on the same work",
    ),
    "scaling": (
        ["bench/iteration.py", "scaling", "--repeats", "1"],
        "how an iteration grows with group size, frames and resolution",
    ),
}


def machine() -> str:
    """CPU model, the cores this process may use, and torch's version."""
    import torch

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{model}, {len(os.sched_getaffinity(0))} cores{gpu}, torch {torch.__version__}"


def run(name: str, env: dict[str, str]) -> dict:
    args, _ = BENCHMARKS[name]
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, check=False
    )
    seconds = time.perf_counter() - start
    out = proc.stdout.strip()
    if proc.returncode != 0:
        out += f"\n\nFAILED (exit {proc.returncode}):\n" + proc.stderr.strip()[-3000:]
    return {
        "command": "python " + " ".join(args),
        "seconds": round(seconds, 1),
        "code": proc.returncode,
        "output": out,
    }


def section(runs: dict[str, dict]) -> str:
    """The CPU table and every benchmark's output, in BENCHMARKS' order."""
    shown = [name for name in BENCHMARKS if name in runs]
    total = sum(runs[n]["seconds"] for n in shown)
    lines = [
        BEGIN,
        "## CPU table (`make bench`)",
        "",
        f"Written by `make bench` ({total / 60:.1f} min of benchmarks in all). Each row is one",
        "benchmark, run alone in its own process with one torch thread; its output follows below,",
        "verbatim.",
        "",
        "| benchmark | what it answers | command | machine | date | wall s |",
        "|---|---|---|---|---|---|",
    ]
    for name in shown:
        r = runs[name]
        status = "" if r["code"] == 0 else " (failed)"
        lines.append(
            f"| {name}{status} | {BENCHMARKS[name][1]} | `{r['command']}` | {r['machine']} "
            f"| {r['date']} | {r['seconds']:.0f} |"
        )
    for name in shown:
        r = runs[name]
        fenced = "|---" not in r["output"]  # markdown tables render as they are
        lines += ["", f"### {name}: {BENCHMARKS[name][1]}", ""]
        lines += [f"`{r['command']}` on {r['machine']}, {r['date']}, {r['seconds']:.0f} s.", ""]
        lines += ["```text", r["output"], "```"] if fenced else [r["output"]]
    lines.append(END)
    return "\n".join(lines) + "\n"


def rewrite(path: Path, text: str) -> None:
    """Replace the marked section of ``path`` with ``text`` (appended when absent)."""
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        new = head + text + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    atomic_write_text(path, new)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=list(BENCHMARKS), default=None)
    parser.add_argument("--results", type=Path, default=Path("bench/RESULTS.md"))
    parser.add_argument("--store", type=Path, default=Path("bench/results_cpu.json"))
    parser.add_argument("--list", action="store_true", help="print the benchmarks and stop")
    args = parser.parse_args(argv)
    if args.list:
        for name, (cmd, what) in BENCHMARKS.items():
            print(f"{name:20s} python {' '.join(cmd)}  ({what})")
        return
    names = args.only or list(BENCHMARKS)
    runs = json.loads(args.store.read_text()) if args.store.exists() else {}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    host, day = machine(), datetime.date.today().isoformat()
    print(f"{len(names)} benchmarks on {host}", flush=True)
    start = time.perf_counter()
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name}: python {' '.join(BENCHMARKS[name][0])}", flush=True)
        r = run(name, env) | {"machine": host, "date": day}
        status = "" if r["code"] == 0 else f", FAILED exit {r['code']}"
        print(r["output"] + f"\n({r['seconds']:.0f} s{status})\n", flush=True)
        runs[name] = r
        atomic_write_json(args.store, runs)  # a later failure keeps what ran
    rewrite(args.results, section(runs))
    minutes = (time.perf_counter() - start) / 60
    print(f"{args.results}: CPU table rewritten; {len(names)} benchmarks took {minutes:.1f} min")
    if any(runs[n]["code"] for n in names):
        sys.exit(1)


if __name__ == "__main__":
    main()
