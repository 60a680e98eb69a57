"""One denoising step and one backward of the real Wan2.1 transformer (random weights), as a GRPO
update runs it: through ``VideoPolicy.velocity`` with the chosen conditioning and trainable part.

480x832x81 video -> latents 16 x 21 x 60 x 104 (32,760 tokens; camera_v2v doubles them with the
source half), 512 text tokens of UMT5 width 4096, bf16 autocast with fp32 master weights and
gradient checkpointing. The text states are random: UMT5-XXL runs once per prompt under no_grad,
outside the update. ``--decode`` instead times the Wan2.1 VAE (random weights) decoding the
latents to RGB under no_grad, the step an RGB reward adds. Prints a row for ``bench/RESULTS.md``.

    python bench/wan_full_scale.py                      # the 1.3B t2v full update
    python bench/wan_full_scale.py --conditioning camera_v2v --train self_attention
    python bench/wan_full_scale.py --all                # every row, one process each
    python bench/wan_full_scale.py --device cpu --layers 1 --frames 5 --height 64 --width 64
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import torch
from diffusers import AutoencoderKLWan

from geogrpo.camera.presets import preset_trajectory
from geogrpo.models.autoencoder import SPATIAL_STRIDE, WanVideoAutoencoder, latent_frames
from geogrpo.models.conditioning import Condition, make_conditioning
from geogrpo.models.params import add_lora
from geogrpo.models.policy import VideoPolicy
from geogrpo.models.text import GrammarTextEncoder
from geogrpo.models.wan import CONFIGS, build_transformer

TRAIN = ("full", "lora", "self_attention")
# The rows of RESULTS: the check, what checkpointing buys, and each method's set-up
# (VGGRPO: t2v LoRA; Geo-Align: camera_v2v self-attention; World-R1 Large: 14B), then the VAE.
ALL_ROWS = (
    [],
    ["--no-checkpointing"],
    ["--train", "lora"],
    ["--conditioning", "camera_v2v", "--train", "self_attention"],
    ["--config", "wan2.1-t2v-14b", "--train", "lora"],
    ["--config", "wan2.1-t2v-14b", "--train", "lora", "--base-dtype", "bfloat16"],
    ["--decode"],
)
ROW_TIMEOUT_S = 300


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="wan2.1-t2v-1.3b", choices=sorted(CONFIGS))
    parser.add_argument("--conditioning", default="t2v", choices=("t2v", "camera_v2v"))
    parser.add_argument("--train", default="full", choices=TRAIN)
    parser.add_argument("--lora-rank", type=int, default=32)
    parser.add_argument(
        "--base-dtype",
        default="float32",
        choices=("float32", "bfloat16"),
        help="weights of the frozen base under LoRA (trained weights stay float32)",
    )
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--no-checkpointing", action="store_true")
    parser.add_argument("--decode", action="store_true", help="time the VAE decode instead")
    parser.add_argument("--layers", type=int, default=None, help="fewer blocks (a CPU smoke run)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--all", action="store_true", help="run every row in its own process")
    return parser.parse_args(argv)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_gib(device: torch.device) -> str:
    if device.type != "cuda":
        return "n/a"
    return f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"


def update_row(args: argparse.Namespace, device: torch.device) -> str:
    config = dict(CONFIGS[args.config])
    if args.layers is not None:
        config["num_layers"] = args.layers
    if args.base_dtype != "float32" and args.train != "lora":
        raise SystemExit("--base-dtype bfloat16 needs --train lora: trained weights stay float32")
    transformer = build_transformer(config, device=device, dtype=getattr(torch, args.base_dtype))
    conditioning = make_conditioning(args.conditioning)
    conditioning.attach(transformer)
    transformer.to(device)
    if args.train == "lora":
        transformer = add_lora(transformer, rank=args.lora_rank)
    with torch.device("meta"):  # only its latent layout is used
        vae = WanVideoAutoencoder(AutoencoderKLWan())
    text_encoder = GrammarTextEncoder()  # unused: the text states below stand in for UMT5's
    policy = VideoPolicy(
        transformer, vae, text_encoder, conditioning, autocast_dtype=torch.bfloat16
    )
    policy.select_trainable(args.train)
    if not args.no_checkpointing:
        policy.enable_gradient_checkpointing()
    policy.transformer.train()
    shape = policy.latent_shape(1, args.frames, args.height, args.width)
    x = torch.randn(shape, device=device)
    condition = Condition(
        prompts=[""],
        text=torch.randn(1, 512, config["text_dim"], device=device),
        cameras=preset_trajectory("arc_left", args.frames).float()[None].to(device),
        source_latents=torch.randn(shape, device=device),
    )
    params = sum(p.numel() for p in policy.transformer.parameters())
    trained = sum(p.numel() for p in policy.transformer.parameters() if p.requires_grad)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = {}
    for phase in ("warmup", "measured"):
        synchronize(device)
        start = time.perf_counter()
        v = policy.velocity(x, 0.7, condition)
        synchronize(device)
        forward = time.perf_counter() - start
        v.square().mean().backward()
        synchronize(device)
        times[phase] = (forward, time.perf_counter() - start - forward)
        policy.transformer.zero_grad(set_to_none=True)
    tokens = shape[2] * shape[3] * shape[4] // 4 * (2 if args.conditioning == "camera_v2v" else 1)
    fwd, bwd = times["measured"]
    return (
        f"| {args.config} | {args.conditioning} | {args.train} ({trained / 1e6:.1f} M of "
        f"{params / 1e9:.3f} B, base {args.base_dtype}) | "
        f"{args.height}x{args.width}x{args.frames} ({tokens} tokens) | "
        f"checkpointing {not args.no_checkpointing} | forward {fwd:.2f} s | backward {bwd:.2f} s "
        f"| peak {peak_gib(device)} | {device_name(device)} |"
    )


def decode_row(args: argparse.Namespace, device: torch.device) -> str:
    """The Wan2.1 VAE (diffusers' default config is Wan2.1's) decoding one clip, fp32, no grad."""
    vae = WanVideoAutoencoder(AutoencoderKLWan()).to(device).eval()
    shape = (
        1,
        vae.latent_channels,
        latent_frames(args.frames),
        args.height // SPATIAL_STRIDE,
        args.width // SPATIAL_STRIDE,
    )
    z = torch.randn(shape, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = []
    with torch.no_grad():
        for _ in range(2):
            synchronize(device)
            start = time.perf_counter()
            video = vae.decode(z)
            synchronize(device)
            seconds.append(time.perf_counter() - start)
    return (
        f"| Wan2.1 VAE decode | {tuple(z.shape)} -> {tuple(video.shape)} | fp32, no grad | "
        f"{seconds[-1]:.2f} s | peak {peak_gib(device)} | {device_name(device)} |"
    )


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name() if device.type == "cuda" else "CPU"


def run_all(argv: list[str]) -> None:
    """Each row in a fresh process, so peaks are per row and an out-of-memory row is reported
    rather than ending the rest."""
    passed = [a for a in argv if a != "--all"]
    for extra in ALL_ROWS:
        try:
            done = subprocess.run(
                [sys.executable, __file__, *passed, *extra],
                capture_output=True,
                text=True,
                timeout=ROW_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            print(f"| {' '.join(extra) or 'default'} | timed out after {ROW_TIMEOUT_S} s |")
            continue
        if done.returncode == 0:
            print(done.stdout.strip().splitlines()[-1], flush=True)
        else:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            print(f"| {' '.join(extra) or 'default'} | failed: {last[:300]} |", flush=True)


def main() -> None:
    args = parse_args()
    if args.all:
        run_all(sys.argv[1:])
        return
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU (or --device cpu with a small --layers)")
    print(decode_row(args, device) if args.decode else update_row(args, device), flush=True)


if __name__ == "__main__":
    main()
