"""How close the embedded policies' training step comes to this machine's matmul peak.

A GRPO update is a forward and a backward of the policy on stored rollout states. Here each
shipped policy runs that step (a velocity at t = 0.6 for a micro-batch, then the backward of
``mean(v^2)``, LoRA r16 on every block part as the recipes train it) while
``torch.utils.flop_counter`` counts its FLOPs exactly. A dense float32 matmul, interleaved with
the step in the same process and on the same thread count, gives the peak the step is compared
with. Medians over repeats.

Each policy's step also runs with every transformer block compiled (``--compile inductor``,
the trainer's ``model.compile``), interleaved with the eager one; the compile time is printed.

    python bench/compute_efficiency.py [--batch 8] [--repeats 5] [--threads 1] [--compile no]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from geogrpo.models.conditioning import ConditionInputs
from geogrpo.models.policy import SHIPPED, VideoPolicy
from geogrpo.world.datasets import MultiViewPairs

MATMUL_SIZE = 1024  # large enough for the BLAS kernel's steady state on one core


def matmul_flops_per_s() -> float:
    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    start = time.perf_counter()
    for _ in range(4):
        a @ b
    return 4 * 2 * MATMUL_SIZE**3 / (time.perf_counter() - start)


def condition_inputs(name: str, frames: int, size: int, batch: int) -> ConditionInputs:
    """What the conditioning takes: a rendered val pair for the v2v policies, else sizes."""
    if name in ("camera_v2v", "reproj_v2v"):
        from geogrpo.train.conditions import from_items

        item = MultiViewPairs("val", 1, frames, size)[0]
        return from_items([item] * batch, name, "world").inputs
    return ConditionInputs(num_frames=frames, image_size=(size, size))


def training_step(policy: VideoPolicy, batch: int, frames: int, size: int):
    """A closure running one forward + backward of ``policy`` on a micro-batch."""
    inputs = condition_inputs(policy.conditioning.name, frames, size, batch)
    condition = policy.prepare(["the camera pans left ."] * batch, inputs)
    x = torch.randn(policy.latent_shape(batch, frames, size, size))

    def step() -> None:
        v = policy.velocity(x, 0.6, condition)
        v.square().mean().backward()
        policy.transformer.zero_grad(set_to_none=True)

    return step


def lora_policy(name: str) -> VideoPolicy:
    policy = VideoPolicy.from_pretrained(name)
    for p in policy.parameters():
        p.requires_grad_(False)
    policy.add_lora(16)
    return policy


def measure(
    policy_name: str, batch: int, frames: int, size: int, repeats: int, backend: str
) -> list[dict]:
    """Eager (and, with a ``backend``, compiled) steps interleaved with the matmul peak, so
    that all three see the same machine state."""
    steps = {"eager": training_step(lora_policy(policy_name), batch, frames, size)}
    compile_s = 0.0
    if backend != "no":
        policy = lora_policy(policy_name)
        policy.compile_blocks(backend)
        steps[backend] = training_step(policy, batch, frames, size)
        start = time.perf_counter()
        steps[backend]()  # compiles; a second call to check nothing recompiles
        steps[backend]()
        compile_s = time.perf_counter() - start
    with FlopCounterMode(display=False) as counter:
        steps["eager"]()
    flops = counter.get_total_flops()
    times: dict[str, list[float]] = {k: [] for k in steps}
    peak = []
    for _ in range(repeats):
        peak.append(matmul_flops_per_s())
        for kind, step in steps.items():
            start = time.perf_counter()
            step()
            times[kind].append(time.perf_counter() - start)
    rate = statistics.median(peak)
    eager_s = statistics.median(times["eager"])
    rows = []
    for kind, ts in times.items():
        seconds = statistics.median(ts)
        rows.append(
            {
                "policy": policy_name,
                "run": kind if kind == "eager" else f"compiled ({kind}, {compile_s:.0f} s)",
                "gflop": flops / 1e9,
                "seconds": seconds,
                "achieved": flops / seconds,
                "peak": rate,
                "speedup": eager_s / seconds,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--policies", nargs="*", default=list(SHIPPED))
    parser.add_argument(
        "--compile",
        default="inductor",
        choices=("no", "inductor", "aot_eager"),
        help="also time the step with every block compiled (VideoPolicy.compile_blocks)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"forward + backward, micro-batch {args.batch}, {args.size}x{args.size}x{args.frames}, "
        f"LoRA r16, {args.threads} thread(s); peak: {MATMUL_SIZE}^3 float32 matmul\n"
    )
    print(
        "| policy | run | GFLOP a step | s a step | achieved GFLOP/s | matmul peak GFLOP/s "
        "| share | vs eager |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in args.policies:
        for r in measure(name, args.batch, args.frames, args.size, args.repeats, args.compile):
            print(
                f"| {r['policy']} | {r['run']} | {r['gflop']:.1f} | {r['seconds']:.3f} "
                f"| {r['achieved'] / 1e9:.1f} | {r['peak'] / 1e9:.1f} "
                f"| {r['achieved'] / r['peak']:.0%} | {r['speedup']:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
