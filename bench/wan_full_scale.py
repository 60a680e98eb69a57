"""One denoising step and one backward of the real Wan2.1-T2V-1.3B transformer (random weights).

480x832x81 video -> latents 16 x 21 x 60 x 104 (32,760 tokens), 512 text tokens of UMT5 width
4096, bf16 autocast with fp32 master weights and gradient checkpointing: the memory and time a
GRPO update of the full model costs per sample. Needs a CUDA GPU (about 40 GB); prints a line for
``bench/RESULTS.md``.

    python bench/wan_full_scale.py [--config wan2.1-t2v-1.3b] [--frames 81] [--height 480] ...
"""

from __future__ import annotations

import argparse
import time

import torch

from geogrpo.models.autoencoder import SPATIAL_STRIDE, latent_frames
from geogrpo.models.wan import build_transformer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="wan2.1-t2v-1.3b")
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--no-checkpointing", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU; see bench/RESULTS.md for recorded runs")
    device = torch.device("cuda")
    model = build_transformer(args.config, device=device)
    if not args.no_checkpointing:
        model.enable_gradient_checkpointing()
    model.train()
    shape = (
        1,
        16,
        latent_frames(args.frames),
        args.height // SPATIAL_STRIDE,
        args.width // SPATIAL_STRIDE,
    )
    x = torch.randn(shape, device=device)
    text = torch.randn(1, 512, model.config.text_dim, device=device)
    t = torch.tensor([700.0], device=device)
    torch.cuda.reset_peak_memory_stats()
    times = {}
    for phase in ("warmup", "measured"):
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[
                0
            ]
        torch.cuda.synchronize()
        forward = time.perf_counter() - start
        out.float().square().mean().backward()
        torch.cuda.synchronize()
        times[phase] = (forward, time.perf_counter() - start - forward)
        model.zero_grad(set_to_none=True)
    params = sum(p.numel() for p in model.parameters())
    tokens = shape[2] * shape[3] * shape[4] // 4
    fwd, bwd = times["measured"]
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(
        f"| {args.config} | {params / 1e9:.3f} B | {args.height}x{args.width}x{args.frames} "
        f"({tokens} tokens) | bf16 autocast, checkpointing {not args.no_checkpointing} | "
        f"forward {fwd:.2f} s | backward {bwd:.2f} s | "
        f"peak {peak:.1f} GiB | {torch.cuda.get_device_name()} |"
    )


if __name__ == "__main__":
    main()
