"""tinygeo: a small feed-forward geometry model (VGGT-like in spirit) trained on our world.

Why: the papers' estimators (MapAnything, VGGT, Depth Anything 3) cannot be downloaded here, and a
reward needs an estimator that runs in milliseconds on a CPU. tinygeo is the embedded stand-in:
a per-frame conv patch encoder (16x16 patches, 36 tokens per 96x96 frame), transformer blocks
that alternate attention within a frame and across all frames (VGGT's alternating attention), a
camera token per frame (the first frame's token is its own parameter, as in VGGT, so the model
knows the reference view), a camera head (6D rotation + translation of each frame relative to
the first) and a dense head (log-depth and a confidence logit per pixel, a pixel-shuffle of the
patch tokens refined by a small conv on the RGB).

Outputs are **metric** in world units: the world's camera height (1.5) fixes the scale, and the
training clips all share the renderer's 60 degree horizontal field of view, so the model assumes
those intrinsics. ``confidence`` is trained to be the probability that a pixel shows a *static*
surface (not sky, not a moving object): the reprojection reward uses it to drop dynamic regions.

The blocks are split at ``stitch_layer`` so that the Latent Geometry Model can replace the encoder
and the first blocks with a connector on VAE latents (:mod:`geogrpo.perception.latent`).
"""

from __future__ import annotations

from pathlib import Path

import roma
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geogrpo.camera.se3 import intrinsics_from_fov, make_pose
from geogrpo.perception.base import GeometryEstimate, check_video, sanitize_video
from geogrpo.utils.checks import check_int_range
from geogrpo.utils.integrity import (
    load_json_object,
    load_safetensors,
    verify_manifest,
    write_digests_manifest,
)
from geogrpo.utils.io import atomic_save_safetensors, atomic_write_json

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
PATCH = 16
WORLD_FOV_DEG = 60.0


class _Block(nn.Module):
    """Pre-norm transformer block; ``scope`` says which tokens attend to each other."""

    def __init__(self, dim: int, heads: int, scope: str) -> None:
        super().__init__()
        self.scope = scope
        self.layer = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )

    def forward(self, tokens: Tensor) -> Tensor:  # [B, F, T, D]
        b, f, t, d = tokens.shape
        if self.scope == "frame":
            return self.layer(tokens.reshape(b * f, t, d)).reshape(b, f, t, d)
        # Across all F (1 + g^2) tokens of a clip, the fused inference path's attention (bmm,
        # softmax, bmm) is 1.7x slower on a CPU than the composed path's (training's)
        # scaled_dot_product_attention; same result up to float rounding.
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            return self.layer(tokens.reshape(b, f * t, d)).reshape(b, f, t, d)
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)


class TinyGeo(nn.Module):
    """``video [B, F, H, W, 3]`` -> relative cameras, log-depth and confidence logits."""

    def __init__(
        self, dim: int = 128, heads: int = 4, layers: int = 4, size: int = 96, stitch_layer: int = 1
    ) -> None:
        super().__init__()
        check_int_range("layers", layers, 1)
        check_int_range("stitch_layer", stitch_layer, 0, layers)
        if size % PATCH:
            raise ValueError(f"size: must be divisible by the patch size {PATCH}, got {size}")
        self.config = {
            "dim": dim,
            "heads": heads,
            "layers": layers,
            "size": size,
            "stitch_layer": stitch_layer,
        }
        self.grid = size // PATCH
        self.stitch_layer = stitch_layer
        self.stem = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.GELU(),
            nn.GELU(),
            nn.Conv2d(64, 96, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(96, dim, 3, stride=2, padding=1),
        )
        self.pos = nn.Parameter(torch.randn(1, self.grid * self.grid, dim) * 0.02)
        self.camera_tokens = nn.Parameter(torch.randn(2, dim) * 0.02)  # [first frame, others]
        self.blocks = nn.ModuleList(
            _Block(dim, heads, "frame" if i % 2 == 0 else "global") for i in range(layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.camera_head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 9))
        self.dense_head = nn.Linear(dim, PATCH * PATCH * 2)
        self.refine = nn.Sequential(
            nn.Conv2d(5, 12, 3, padding=1), nn.GELU(), nn.Conv2d(12, 2, 3, padding=1)
        )

    def embed(self, video: Tensor) -> Tensor:
        """``[B, F, H, W, 3]`` in [0, 1] -> tokens ``[B, F, 1 + h w, D]`` (camera token first)."""
        b, f, h, w, _ = video.shape
        if h != w or h != self.config["size"]:
            raise ValueError(
                f"video: tinygeo was built for {self.config['size']}x{self.config['size']} "
                f"frames, got {h}x{w}; resize the clip first"
            )
        x = self.stem(video.reshape(b * f, h, w, 3).permute(0, 3, 1, 2) * 2 - 1)
        patches = x.flatten(2).transpose(1, 2) + self.pos  # [B F, h w, D]
        kind = torch.tensor([0] + [1] * (f - 1), device=video.device)
        cams = self.camera_tokens[kind]  # [F, D]
        cams = cams[None].expand(b, f, -1).reshape(b * f, 1, -1)
        return torch.cat([cams, patches], dim=1).reshape(b, f, 1 + self.grid**2, -1)

    def features(self, video: Tensor) -> Tensor:
        """Tokens at the stitch point (after ``stitch_layer`` blocks): what the LGM imitates."""
        tokens = self.embed(video)
        for block in self.blocks[: self.stitch_layer]:
            tokens = block(tokens)
        return tokens

    def heads(self, tokens: Tensor, video: Tensor | None = None) -> dict[str, Tensor]:
        """Run the blocks after the stitch point and the heads.

        ``video`` (RGB) feeds the dense head's refinement; the latent path has no RGB and passes
        None (the refinement then sees a mid-grey image, as it did in the LGM's training).
        """
        for block in self.blocks[self.stitch_layer :]:
            tokens = block(tokens)
        tokens = self.norm(tokens)
        b, f = tokens.shape[:2]
        cam = self.camera_head(tokens[:, :, 0])  # [B, F, 9]
        rot = roma.special_gramschmidt(cam[..., :6].reshape(b, f, 3, 2))
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device).expand(b, 1, 3, 3)
        rot = torch.cat([eye, rot[:, 1:]], dim=1)  # the first frame is the world frame
        trans = torch.cat([torch.zeros_like(cam[:, :1, 6:]), cam[:, 1:, 6:]], dim=1)
        g = self.grid
        dense = self.dense_head(tokens[:, :, 1:]).reshape(b * f, g, g, 2, PATCH, PATCH)
        dense = dense.permute(0, 3, 1, 4, 2, 5).reshape(b * f, 2, g * PATCH, g * PATCH)
        dense = dense + self.refine_dense(dense, video, f)
        dense = dense.reshape(b, f, 2, g * PATCH, g * PATCH)
        return {
            "rotation": rot,  # [B, F, 3, 3] of w2c relative to the first frame
            "translation": trans,  # [B, F, 3]
            "log_depth": dense[:, :, 0],  # [B, F, H, W]
            "confidence_logit": dense[:, :, 1],  # [B, F, H, W]
        }

    def refine_dense(self, dense: Tensor, video: Tensor | None, frames: int) -> Tensor:
        """The residual ``[B F, 2, H, W]`` of the dense head's refinement of ``dense`` (same
        shape) from the RGB frames ``video [B, F, H, W, 3]``, or a mid-grey image when None.

        Equal to ``self.refine(cat([dense, rgb]))`` up to float rounding, 3x faster on a CPU:
        one clip (``frames``) at a time, channels-last, so that a clip's 12-channel
        intermediate stays in cache; and mid-grey is zero after ``* 2 - 1``, so the latent path
        leaves its three channels out of the first conv instead of adding zero products.
        """
        first, act, last = self.refine
        weight, rgb = first.weight, None
        if video is None:
            weight = weight[:, : dense.shape[1]]
        else:
            rgb = video.reshape(-1, *video.shape[2:]).permute(0, 3, 1, 2) * 2 - 1  # [B F, 3, H, W]
        out = []
        for i in range(0, dense.shape[0], frames):
            x = dense[i : i + frames]
            if rgb is not None:
                x = torch.cat([x, rgb[i : i + frames].to(x)], dim=1)
            x = x.contiguous(memory_format=torch.channels_last)
            x = F.conv2d(x, weight, first.bias, first.stride, first.padding)
            out.append(last(act(x)).contiguous())
        return torch.cat(out)

    def forward(self, video: Tensor) -> dict[str, Tensor]:
        return self.heads(self.features(video), video)

    def save_pretrained(self, directory: str | Path) -> None:
        save_model(self, directory)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path = "tinygeo", *, verify: bool | None = None
    ) -> TinyGeo:
        config, state = load_model_files(name_or_path, verify=verify)
        model = cls(**config)
        model.load_state_dict(state)
        return model.eval()


def resolve_pretrained(name_or_path: str | Path) -> Path:
    """A shipped perception model's name (``tinygeo``, ...) or a folder holding one."""
    path = Path(name_or_path)
    shipped = PRETRAINED_DIR / str(name_or_path)
    directory = shipped if shipped.is_dir() else path
    missing = [f for f in ("config.json", "model.safetensors") if not (directory / f).is_file()]
    if missing:
        available = sorted(p.name for p in PRETRAINED_DIR.glob("*") if p.is_dir())
        raise FileNotFoundError(
            f"{directory / missing[0]}: missing; {name_or_path} needs config.json + "
            f"model.safetensors. Shipped models are {', '.join(available) or 'none'} (train one "
            "with 'geogrpo pretrain tinygeo')"
        )
    return directory


def save_model(module: nn.Module, directory: str | Path) -> None:
    """``config.json`` (the module's ``config`` and class) + ``model.safetensors``, atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"class": type(module).__name__, **module.config}
    atomic_write_json(directory / "config.json", config)
    atomic_save_safetensors(directory / "model.safetensors", module.state_dict())
    write_digests_manifest(directory)


def load_model_files(
    name_or_path: str | Path, *, verify: bool | None = None
) -> tuple[dict, dict[str, Tensor]]:
    """The config (without its class) and float32 weights of a saved perception model, after
    checking the folder's ``manifest.json`` (unless ``verify=False``)."""
    directory = resolve_pretrained(name_or_path)
    verify_manifest(directory, verify=verify)
    config = load_json_object(directory / "config.json", "perception model config")
    config.pop("class", None)
    state = load_safetensors(directory / "model.safetensors")
    return config, {k: v.float() for k, v in state.items()}


def outputs_to_estimate(
    out: dict[str, Tensor], intrinsics: Tensor, reasons: list[str]
) -> GeometryEstimate:
    """Network outputs -> a :class:`GeometryEstimate` (cameras in float64, as in camera/) on
    the outputs' device."""
    b, f = out["rotation"].shape[:2]
    w2c = make_pose(out["rotation"].double(), out["translation"].double())
    est = GeometryEstimate(
        w2c=w2c,
        intrinsics=intrinsics.to(w2c.device, torch.float64).expand(b, f, 3, 3).clone(),
        depth=out["log_depth"].float().exp(),
        confidence=torch.sigmoid(out["confidence_logit"].float()),
        scale="metric",
        valid=torch.ones(b, dtype=torch.bool),
    )
    for i, reason in enumerate(reasons):
        if reason:
            est.invalidate(i, reason)
    return est


class TinyGeoEstimator:
    """:class:`~geogrpo.perception.base.GeometryEstimator` over a (shipped) :class:`TinyGeo`.

    The model is moved to ``device`` once, here (None: where a given model is, the CPU for a
    loaded one); :meth:`estimate` moves the video there and returns the estimate on that
    device (``valid`` on the CPU)."""

    name = "tinygeo"
    scale = "metric"

    def __init__(
        self,
        model: TinyGeo | str | Path = "tinygeo",
        max_batch: int = 8,
        device: torch.device | str | None = None,
    ) -> None:
        model = model if isinstance(model, TinyGeo) else TinyGeo.from_pretrained(model)
        self.model = model.to(device).eval().requires_grad_(False)
        self.device = model.pos.device
        self.max_batch = max_batch

    def intrinsics(self, height: int, width: int) -> Tensor:
        return intrinsics_from_fov(WORLD_FOV_DEG, height, width)

    def estimate(self, video: Tensor, intrinsics: Tensor | None = None) -> GeometryEstimate:
        check_video("video", video, min_frames=2)
        clean, reasons = sanitize_video(video.to(self.device, torch.float32))
        with torch.no_grad():
            parts = [self.model(chunk) for chunk in clean.split(self.max_batch)]
        out = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        k = self.intrinsics(*video.shape[2:4]) if intrinsics is None else intrinsics[:, None]
        return outputs_to_estimate(out, k, reasons)


def geometry_loss(
    out: dict[str, Tensor],
    rel_w2c: Tensor,  # [B, F, 4, 4] truth relative to the first frame
    depth: Tensor,  # [B, F, H, W], 0 at sky
    static: Tensor,  # [B, F, H, W] bool, static surface
    rotation_weight: float = 1.0,
) -> dict[str, Tensor]:
    """Supervised loss: rotation (Frobenius, ``8 sin^2(angle / 2)``, about ``2 angle^2``: small
    for the world's 5-20 degree rotations next to the depth term, hence ``rotation_weight``),
    translation (smooth L1, world units), log-depth (L1 on surfaces) and confidence (BCE
    against the static-surface mask)."""
    rot = (out["rotation"] - rel_w2c[..., :3, :3].to(out["rotation"])).square().sum((-1, -2))
    trans = F.smooth_l1_loss(
        out["translation"], rel_w2c[..., :3, 3].to(out["translation"]), beta=0.1
    )
    surface = depth > 0
    log_d = torch.log(depth.clamp_min(1e-3))
    depth_l1 = ((out["log_depth"] - log_d).abs() * surface).sum() / surface.sum().clamp_min(1)
    conf = F.binary_cross_entropy_with_logits(out["confidence_logit"], static.float())
    total = rotation_weight * rot.mean() + 2.0 * trans + depth_l1 + 0.2 * conf
    return {
        "loss": total,
        "rotation": rot.mean(),
        "translation": trans,
        "depth": depth_l1,
        "confidence": conf,
    }
