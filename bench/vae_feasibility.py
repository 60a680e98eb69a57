"""Can a tiny video autoencoder reach 28 dB PSNR on the procedural world on a 2-core CPU?

The embedded default (96x96 RGB, 17 = 4k+1 frames) needs a small pretrained video autoencoder for
the tiny Wan DiT to work in, with a latent of 16 channels, 8x spatial and 4x temporal compression
where frame 0 is encoded alone (Wan's causal rule: 17 frames -> 5 latent frames, 96 -> 12). The
quality floor is a reconstruction PSNR of 28 dB on the val split. This script trains candidates for
the same wall-clock budget on the same pre-rendered clips (Adam, fixed seed, 2 threads) and prints
val PSNR on full 96x96x17 clips at checkpoints so the slope shows:

* ``wan8`` / ``wan16``: diffusers ``AutoencoderKLWan`` with base_dim 8 / 16 (the architecture the
  Wan pipelines expect), trained on the posterior mean.
* ``conv3d``: a lighter plain causal 3D-conv autoencoder with the same latent layout, the fallback
  the issue allows.

Pitfalls handled here: ``AutoencoderKLWan.decode`` clamps to [-1, 1], which zeroes the gradient of
every saturated pixel, so training decodes through the decoder internals without the clamp (the
clamp is kept for evaluation); pixels are mapped from [0, 1] to [-1, 1]; the Wan encoder takes
1 + 4k frames (it silently drops the rest) and sizes divisible by 8, so crops are 9 x 64 x 64.
Before the timed run every model overfits one fixed batch to validate the set-up.

    python bench/vae_feasibility.py --minutes 5  # about 25 min on 2 cores
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan
from torch import Tensor, nn

from geogrpo.eval.metrics import psnr
from geogrpo.utils.video import model_to_frames
from geogrpo.world.datasets import TextToVideoClips

FRAMES, SIZE = 17, 96
LATENT_CHANNELS = 16
TARGET_PSNR = 28.0


def load_clips(split: str, n: int, cache_dir: Path) -> Tensor:
    """``n`` clips of ``split`` as ``[n, 3, F, H, W]`` in [-1, 1] (rendered once, then cached)."""
    ds = TextToVideoClips(split, n, num_frames=FRAMES, size=SIZE, cache_dir=cache_dir / split)
    return torch.stack([ds[i]["video"] for i in range(n)]).permute(0, 4, 1, 2, 3) * 2 - 1


class WanAutoencoder(nn.Module):
    """A tiny ``AutoencoderKLWan``; ``forward`` decodes the posterior mean without the clamp."""

    def __init__(self, base_dim: int) -> None:
        super().__init__()
        self.vae = AutoencoderKLWan(base_dim=base_dim, z_dim=LATENT_CHANNELS)

    def encode(self, x: Tensor) -> Tensor:
        return self.vae.encode(x).latent_dist.mode()

    def decode(self, z: Tensor) -> Tensor:
        return self.vae.decode(z).sample

    def forward(self, x: Tensor) -> Tensor:
        # AutoencoderKLWan._decode minus its final clamp: one latent frame per call, with the
        # causal feature cache carrying the previous frames (the cache keeps the autograd graph).
        vae, z = self.vae, self.encode(x)
        vae.clear_cache()
        h = vae.post_quant_conv(z)
        frames = []
        for i in range(h.shape[2]):
            vae._conv_idx = [0]
            frames.append(
                vae.decoder(
                    h[:, :, i : i + 1],
                    feat_cache=vae._feat_map,
                    feat_idx=vae._conv_idx,
                    first_chunk=i == 0,
                )
            )
        vae.clear_cache()
        return torch.cat(frames, dim=2)


class CausalConv3d(nn.Conv3d):
    """3D conv whose time axis sees only the past: the first frame is replicated in front."""

    def __init__(
        self, c_in: int, c_out: int, kernel: tuple[int, int, int], stride: tuple[int, int, int]
    ) -> None:
        super().__init__(c_in, c_out, kernel, stride)
        self.time_pad, self.space_pad = kernel[0] - 1, (kernel[2] - stride[2]) // 2

    def forward(self, x: Tensor) -> Tensor:
        if self.time_pad:
            x = torch.cat([x[:, :, :1].expand(-1, -1, self.time_pad, -1, -1), x], dim=2)
        if self.space_pad:
            x = F.pad(x, (self.space_pad, self.space_pad, self.space_pad, self.space_pad))
        return F.conv3d(x, self.weight, self.bias, self.stride)


class ResBlock(nn.Module):
    """``x + conv(silu(conv(silu(x))))``; the second conv starts at zero (identity block)."""

    def __init__(self, channels: int, time_kernel: int) -> None:
        super().__init__()
        kernel = (time_kernel, 3, 3)
        self.conv1 = CausalConv3d(channels, channels, kernel, (1, 1, 1))
        self.conv2 = CausalConv3d(channels, channels, kernel, (1, 1, 1))
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class Upsample(nn.Module):
    """Nearest 2x in space (and in time, dropping the first copy: 5 -> 9 -> 17), then a conv."""

    def __init__(self, c_in: int, c_out: int, time: bool) -> None:
        super().__init__()
        self.time = time
        self.conv = CausalConv3d(c_in, c_out, (3, 3, 3), (1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=(2 if self.time else 1, 2, 2), mode="nearest")
        return self.conv(x[:, :, 1:] if self.time else x)


class Conv3dAutoencoder(nn.Module):
    """A plain causal 3D-conv autoencoder with the Wan latent layout (no norms, no attention).

    Full-resolution work is a single strided conv per side; frames are paired causally by the
    two temporal downsamples (``[f0, f0], [f1, f2], ...``), so latent frame ``k > 0`` sees frames
    up to ``4k`` and latent frame 0 sees frame 0 alone.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w1, w2 = width, 2 * width
        self.encoder = nn.Sequential(
            CausalConv3d(3, w1, (1, 4, 4), (1, 2, 2)),  # 48
            ResBlock(w1, 1),
            CausalConv3d(w1, w2, (2, 4, 4), (2, 2, 2)),  # 24, 9 frames
            ResBlock(w2, 3),
            CausalConv3d(w2, w2, (2, 4, 4), (2, 2, 2)),  # 12, 5 frames
            ResBlock(w2, 3),
            nn.SiLU(),
            CausalConv3d(w2, LATENT_CHANNELS, (1, 1, 1), (1, 1, 1)),
        )
        self.decoder = nn.Sequential(
            CausalConv3d(LATENT_CHANNELS, w2, (3, 3, 3), (1, 1, 1)),
            ResBlock(w2, 3),
            Upsample(w2, w2, time=True),  # 24, 9 frames
            ResBlock(w2, 3),
            Upsample(w2, w1, time=True),  # 48, 17 frames
            ResBlock(w1, 1),
            nn.SiLU(),
            nn.Upsample(scale_factor=(1, 2, 2), mode="nearest"),  # 96
            CausalConv3d(w1, 3, (1, 3, 3), (1, 1, 1)),
        )

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z).clamp(-1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


MODELS: dict[str, Callable[[], nn.Module]] = {
    "wan8": lambda: WanAutoencoder(8),
    "wan16": lambda: WanAutoencoder(16),
    "conv3d": Conv3dAutoencoder,
}


@dataclass
class Checkpoint:
    model: str
    params: int
    minutes: float
    steps: int
    train_loss: float
    val_psnr: float
    seconds_per_clip: float


def signed_psnr(a: Tensor, b: Tensor) -> float:
    """PSNR in dB of videos ``[..., 3, F, H, W]`` in [-1, 1], measured on the [0, 1] scale (a
    batch counted as one video)."""

    def frames(video: Tensor) -> Tensor:  # -> [N F, H, W, 3] in [0, 1]
        return model_to_frames(video.reshape(-1, *video.shape[-4:])).flatten(0, 1)

    return psnr(frames(a), frames(b))


def loss_fn(recon: Tensor, target: Tensor) -> Tensor:
    return F.l1_loss(recon, target) + F.mse_loss(recon, target)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, batch: Tensor) -> float:
    """One Adam step on the unclamped reconstruction, gradient norm clipped to 1."""
    loss = loss_fn(model(batch), batch)
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


def random_crops(clips: Tensor, batch: int, frames: int, size: int, gen: torch.Generator) -> Tensor:
    """``batch`` random ``frames x size x size`` windows (any start: the causal rule holds)."""
    out = []
    for _ in range(batch):
        i, t, y, x = (
            int(torch.randint(hi + 1, (1,), generator=gen))
            for hi in (clips.shape[0] - 1, FRAMES - frames, SIZE - size, SIZE - size)
        )
        out.append(clips[i, :, t : t + frames, y : y + size, x : x + size])
    return torch.stack(out)


@torch.no_grad()
def evaluate(model: nn.Module, clips: Tensor) -> tuple[float, float]:
    """Mean val PSNR of full clips through ``encode``/``decode`` and seconds per clip."""
    model.eval()
    scores, seconds = [], 0.0
    for clip in clips:
        start = time.perf_counter()
        recon = model.decode(model.encode(clip[None]))
        seconds += time.perf_counter() - start
        scores.append(signed_psnr(recon[0], clip))
    model.train()
    return sum(scores) / len(scores), seconds / len(clips)


def overfit_check(name: str, train: Tensor, args: argparse.Namespace) -> float:
    """PSNR on one fixed batch after ``args.overfit_steps`` steps on it (set-up sanity check)."""
    torch.manual_seed(args.seed)
    model = MODELS[name]()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    batch = random_crops(train, args.overfit_batch, args.crop_frames, args.crop_size, gen)
    for _ in range(args.overfit_steps):
        train_step(model, opt, batch)
    with torch.no_grad():
        return signed_psnr(model(batch).clamp(-1, 1), batch)


def train_timed(
    name: str, train: Tensor, val: Tensor, args: argparse.Namespace
) -> list[Checkpoint]:
    """Train for ``args.minutes`` of optimiser wall time, evaluating every ``args.eval_every``."""
    torch.manual_seed(args.seed)
    model = MODELS[name]()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    budget, next_eval = args.minutes * 60, args.eval_every * 60
    trained, steps, losses, rows = 0.0, 0, [], []
    while trained < budget:
        start = time.perf_counter()
        batch = random_crops(train, args.batch, args.crop_frames, args.crop_size, gen)
        losses.append(train_step(model, opt, batch))
        trained += time.perf_counter() - start
        steps += 1
        if trained >= next_eval or trained >= budget:
            next_eval += args.eval_every * 60
            val_psnr, seconds = evaluate(model, val)
            row = Checkpoint(
                name, params, trained / 60, steps, sum(losses) / len(losses), val_psnr, seconds
            )
            losses = []
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


HEADER = (
    f"{'model':<8} {'params':>9} {'minutes':>8} {'steps':>6} {'train loss':>11} "
    f"{'val PSNR':>9} {'enc+dec s/clip':>15}"
)


def format_row(r: Checkpoint) -> str:
    return (
        f"{r.model:<8} {r.params:>9,} {r.minutes:>8.2f} {r.steps:>6} {r.train_loss:>11.4f} "
        f"{r.val_psnr:>9.2f} {r.seconds_per_clip:>15.3f}"
    )


def extrapolate(rows: list[Checkpoint], minutes: float) -> float | None:
    """PSNR at ``minutes`` from a least-squares line in log(minutes) over the later half."""
    tail = rows[len(rows) // 2 :]
    if len(tail) < 2:
        return None
    xs, ys = [math.log(r.minutes) for r in tail], [r.val_psnr for r in tail]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return my + slope * (math.log(minutes) - mx)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=3.0, help="training wall time per model")
    p.add_argument("--eval-every", type=float, default=1.0, help="minutes between checkpoints")
    p.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS))
    p.add_argument("--train-clips", type=int, default=48)
    p.add_argument("--val-clips", type=int, default=8)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--crop-frames", type=int, default=9, help="1 + 4k for the Wan encoder")
    p.add_argument("--crop-size", type=int, default=64, help="a multiple of 8")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--overfit-steps", type=int, default=100)
    p.add_argument("--overfit-batch", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", type=Path, default=Path("/tmp/geogrpo_vae_feasibility"))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    if (args.crop_frames - 1) % 4 or args.crop_size % 8:
        p.error("--crop-frames must be 1 + 4k and --crop-size a multiple of 8")
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    train = load_clips("train", args.train_clips, args.cache_dir)
    val = load_clips("val", args.val_clips, args.cache_dir)
    print(
        f"data: {tuple(train.shape)} train, {tuple(val.shape)} val clips in [-1, 1], "
        f"{time.perf_counter() - start:.0f} s",
        flush=True,
    )
    crop = f"{args.crop_frames}x{args.crop_size}x{args.crop_size}"
    for name in args.models:
        start = time.perf_counter()
        fit = overfit_check(name, train, args)
        print(
            f"overfit {name}: PSNR {fit:.2f} dB on one batch ({args.overfit_batch} x {crop}) "
            f"after {args.overfit_steps} steps, {time.perf_counter() - start:.0f} s",
            flush=True,
        )

    print(
        f"\ntimed training: {args.minutes:g} min per model, batch {args.batch} x {crop}, "
        f"Adam lr {args.lr:g}, val: {args.val_clips} full clips"
    )
    print(HEADER, flush=True)
    results = {name: train_timed(name, train, val, args) for name in args.models}

    print("\nsummary")
    print(HEADER)
    for rows in results.values():
        for row in rows:
            print(format_row(row))
    for name, rows in results.items():
        at_hour = extrapolate(rows, 60.0)
        guess = "n/a" if at_hour is None else f"{at_hour:.1f} dB"
        print(
            f"{name}: {rows[-1].val_psnr:.2f} dB after {rows[-1].minutes:.1f} min; "
            f"log-linear extrapolation to 60 min: {guess} (target {TARGET_PSNR:g} dB)"
        )


if __name__ == "__main__":
    main()
