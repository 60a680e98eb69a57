"""Conditionings: how a condition enters the DiT, one small class each, composed by ``VideoPolicy``.

* ``t2v``: text only (VGGRPO).
* ``warped_noise_t2v``: text, plus initial noise transported along the camera the caption's
  camera words describe (World-R1); the denoiser is the t2v one.
* ``camera_v2v`` (ReCamMaster, Geo-Align): source latents concatenated before the noisy target
  along frames; per-block camera encoder/projector on self-attention; only the target half is
  denoised and scored.
* ``reproj_v2v`` (TrajectoryCrafter, DEVIS-GRPO): the source warped into the target cameras (a
  per-frame point-cloud render) and its hole mask, encoded and concatenated as input channels.

Cameras are OpenCV world-to-camera ``[B, F, 4, 4]`` over pixel frames; a latent frame ``k`` uses
pixel frame ``4k`` (the last frame it covers, Wan's causal layout). For the v2v conditionings the
camera path is the target relative to the source camera at the same frame
(``target_w2c[f] = relative[f] @ source_w2c[f]``), which is what a user specifies (a preset).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geogrpo.camera.keywords import camera_keywords_to_trajectory, camera_text_from_prompt
from geogrpo.camera.se3 import check_intrinsics, check_pose, intrinsics_from_fov, invert_pose
from geogrpo.geometry.projection import plucker_rays
from geogrpo.geometry.warp import forward_warp
from geogrpo.models.autoencoder import SPATIAL_STRIDE, TEMPORAL_STRIDE, fold_frames
from geogrpo.models.camera import (
    add_camera_conditioning,
    camera_inputs,
    checkpoint_with_camera_inputs,
    normalized_projection,
)
from geogrpo.models.noise import warped_initial_noise
from geogrpo.utils.checks import USER_INPUT, check_choice, check_finite, check_range
from geogrpo.world.render import DEFAULT_FOV_DEG

# Fields of ConditionInputs that describe the output, accepted by every conditioning.
OUTPUT_FIELDS = ("num_frames", "image_size")


@dataclass(frozen=True)
class ConditionInputs:
    """Raw inputs of a batch of conditions, before encoding (videos, depth, cameras).

    Which fields a conditioning takes is its ``accepts``; :meth:`VideoPolicy.prepare` refuses
    the others by name, so a camera path given to a text-to-video policy is an error, not
    silently ignored. Built by :mod:`geogrpo.train.conditions` from world items, a user's clip
    and trajectory file, or ADEVIS stages.
    """

    num_frames: int | None = None  # F of the output, 4k + 1
    image_size: tuple[int, int] | None = None  # (H, W) of the output
    cameras: Tensor | None = None  # [B, F, 4, 4] w2c; v2v: target relative to source
    intrinsics: Tensor | None = None  # [B, 3, 3] pixels
    source_video: Tensor | None = None  # [B, 3, F, H, W] in [-1, 1]
    source_depth: Tensor | None = None  # [B, F, H, W] z-depth of the source
    source_w2c: Tensor | None = None  # [B, F, 4, 4] cameras of the source

    def __post_init__(self) -> None:
        sizes = {
            name: value.shape[0]
            for name in _INPUT_TENSORS
            if isinstance(value := getattr(self, name), Tensor)
        }
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{k}={v}" for k, v in sizes.items())
            raise ValueError(f"inputs: fields disagree in batch size ({listed})")
        for name in _INPUT_TENSORS:
            if isinstance(value := getattr(self, name), Tensor):
                check_finite(name, value, USER_INPUT)
        src = self.source_video
        if src is not None:
            if src.ndim != 5 or src.shape[1] != 3 or min(src.shape) < 1:
                raise ValueError(
                    f"source_video: expected [B, 3, F, H, W] in [-1, 1], none of them 0, got "
                    f"{tuple(src.shape)}; "
                    "[B, F, H, W, 3] frames in [0, 1] convert with "
                    "geogrpo.utils.video.frames_to_model"
                )
            # a [0, 1] source cannot be told from a dark [-1, 1] one; 0-255 and uint8 can
            object.__setattr__(self, "source_video", check_range("source_video", src, -1.0, 1.0))

    def given(self) -> list[str]:
        """Names of the fields that are set."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def select(self, index: Tensor | slice | list[int]) -> ConditionInputs:
        """The inputs of the chosen batch entries."""
        return replace(
            self,
            **{k: getattr(self, k)[index] for k in _INPUT_TENSORS if getattr(self, k) is not None},
        )

    def repeat(self, times: int) -> ConditionInputs:
        """Each entry ``times`` times in a row (a GRPO group per condition)."""
        return replace(
            self,
            **{
                k: getattr(self, k).repeat_interleave(times, dim=0)
                for k in _INPUT_TENSORS
                if getattr(self, k) is not None
            },
        )


_INPUT_TENSORS = (
    "cameras",
    "intrinsics",
    "source_video",
    "source_depth",
    "source_w2c",
)


@dataclass
class Condition:
    """One batch's condition; a conditioning reads only the fields it needs.

    ``prepare`` turns raw inputs (videos, depth, cameras) into latent-space fields once, so a
    GRPO group reuses them across every denoising step.
    """

    prompts: list[str]
    text: Tensor | None = None  # [B, L, D] text-encoder states
    cameras: Tensor | None = None  # [B, F, 4, 4] w2c; v2v: target relative to source
    intrinsics: Tensor | None = None  # [B, 3, 3] pixels
    source_latents: Tensor | None = None  # [B, C, F_lat, h, w] camera_v2v
    reproj_latents: Tensor | None = None  # [B, C, F_lat, h, w] reproj_v2v
    reproj_mask: Tensor | None = None  # [B, 4, F_lat, h, w] reproj_v2v, 1 = hole
    # classifier-free guidance: v = v(uncond) + scale * (v(text) - v(uncond)); 1 = off
    uncond_text: Tensor | None = None  # [B, L, D] states of the negative prompt
    guidance_scale: float = 1.0

    def __len__(self) -> int:
        return len(self.prompts)

    def select(self, index: slice | list[int]) -> Condition:
        """The conditions of the chosen batch entries (a micro-batch of a group)."""
        rows = list(range(len(self)))[index] if isinstance(index, slice) else list(index)
        pick = torch.tensor(rows, dtype=torch.long)

        def sel(x):
            return None if x is None else x[pick.to(x.device)]

        return replace(
            self,
            prompts=[self.prompts[i] for i in rows],
            **{k: sel(getattr(self, k)) for k in _TENSOR_FIELDS},
        )

    def repeat(self, times: int) -> Condition:
        """Each condition ``times`` times in a row (a GRPO group per condition)."""

        def rep(x):
            return None if x is None else x.repeat_interleave(times, dim=0)

        return replace(
            self,
            prompts=[p for p in self.prompts for _ in range(times)],
            **{k: rep(getattr(self, k)) for k in _TENSOR_FIELDS},
        )


_TENSOR_FIELDS = (
    "text",
    "uncond_text",
    "cameras",
    "intrinsics",
    "source_latents",
    "reproj_latents",
    "reproj_mask",
)


class Conditioning:
    """Base: text-to-video. Subclasses override only what they change."""

    name = "t2v"
    accepts: tuple[str, ...] = ()  # ConditionInputs fields beyond OUTPUT_FIELDS

    def options(self) -> dict[str, object]:
        """Constructor arguments that change the model; saved in ``policy.json``."""
        return {}

    def extra_channels(self, latent_channels: int) -> int:
        """Input channels beyond the noisy latents."""
        return 0

    def attach(self, transformer: nn.Module) -> None:
        """Add conditioning modules to a freshly built transformer."""

    def enable_gradient_checkpointing(self, transformer: nn.Module) -> None:
        transformer.enable_gradient_checkpointing()

    def prepare(
        self, policy: nn.Module, condition: Condition, inputs: ConditionInputs
    ) -> Condition:
        """Fill latent-space fields from raw inputs (see each subclass)."""
        return condition

    def model_input(self, latents: Tensor, condition: Condition) -> Tensor:
        return latents

    def context(self, transformer: nn.Module, condition: Condition, latents: Tensor):
        return nullcontext()

    def output(self, prediction: Tensor, latents: Tensor) -> Tensor:
        return prediction

    def initial_noise(
        self, shape: tuple[int, ...], condition: Condition, generator: torch.Generator | None
    ) -> Tensor:
        return torch.randn(shape, generator=generator)


class WarpedNoiseT2V(Conditioning):
    """World-R1: the t2v denoiser started from camera-warped noise."""

    name = "warped_noise_t2v"
    accepts = ("cameras", "intrinsics")

    def prepare(
        self, policy: nn.Module, condition: Condition, inputs: ConditionInputs
    ) -> Condition:
        if condition.cameras is None:
            frames = inputs.num_frames
            if frames is None:
                raise ValueError("num_frames: warped_noise_t2v needs the clip length for cameras")
            cams = [
                camera_keywords_to_trajectory(camera_text_from_prompt(p), int(frames))
                for p in condition.prompts
            ]
            condition = replace(condition, cameras=torch.stack(cams))
        if condition.intrinsics is None:
            size = inputs.image_size
            if size is None:
                raise ValueError("image_size: warped_noise_t2v needs (H, W) for intrinsics")
            k = intrinsics_from_fov(DEFAULT_FOV_DEG, *size)
            condition = replace(condition, intrinsics=k.expand(len(condition), 3, 3))
        return condition

    def initial_noise(
        self, shape: tuple[int, ...], condition: Condition, generator: torch.Generator | None
    ) -> Tensor:
        if condition.cameras is None or condition.intrinsics is None:
            raise ValueError("condition: warped_noise_t2v needs cameras and intrinsics (prepare)")
        b, c, _, h, w = shape
        size = (h * SPATIAL_STRIDE, w * SPATIAL_STRIDE)
        return torch.stack(
            [
                warped_initial_noise(
                    condition.cameras[i].cpu(),
                    condition.intrinsics[i].cpu(),
                    size,
                    c,
                    generator=generator,
                )
                for i in range(b)
            ]
        )


class CameraV2V(Conditioning):
    """ReCamMaster: frame-concatenated source latents + per-block camera modules.

    ``rays=True`` adds a Plücker ray per token (``models.camera``), expressed in the source
    camera of the same frame: the target half gets the target camera's rays, the source half its
    own (the identity camera's). Without ``intrinsics`` in the condition they are the procedural
    world's (``DEFAULT_FOV_DEG``), as for warped noise. ``attention=True`` adds the PRoPE branch
    (``models.camera``) with cameras in the same frame: the source half's is the identity.
    """

    name = "camera_v2v"
    accepts = ("cameras", "intrinsics", "source_video")

    def __init__(self, rays: bool = False, attention: bool = False) -> None:
        self.rays = bool(rays)
        self.attention = bool(attention)

    def options(self) -> dict[str, object]:
        return {k: True for k, on in (("rays", self.rays), ("attention", self.attention)) if on}

    def attach(self, transformer: nn.Module) -> None:
        add_camera_conditioning(transformer, rays=self.rays, attention=self.attention)

    def enable_gradient_checkpointing(self, transformer: nn.Module) -> None:
        transformer.enable_gradient_checkpointing(checkpoint_with_camera_inputs)

    def prepare(
        self, policy: nn.Module, condition: Condition, inputs: ConditionInputs
    ) -> Condition:
        source = inputs.source_video
        if condition.source_latents is None:
            if source is None:
                raise ValueError("source_video: camera_v2v needs the source video [B, 3, F, H, W]")
            condition = replace(condition, source_latents=policy.encode(source))
        if condition.cameras is None:
            raise ValueError("cameras: camera_v2v needs the target path [B, F, 4, 4]")
        check_pose("cameras", condition.cameras)
        if source is not None:
            _check_camera_count(condition.cameras, source.shape[2])
        return condition

    def model_input(self, latents: Tensor, condition: Condition) -> Tensor:
        src = condition.source_latents
        if src is None or src.shape != latents.shape:
            raise ValueError(
                f"condition: source latents {None if src is None else tuple(src.shape)} must "
                f"match the target latents {tuple(latents.shape)}"
            )
        return torch.cat([src.to(latents), latents], dim=2)

    def context(self, transformer: nn.Module, condition: Condition, latents: Tensor):
        cams = _latent_frame_cameras(condition.cameras, latents.shape[2])  # [B, F_lat, 4, 4]
        cams = cams.to(latents.device)
        patch = transformer.config.patch_size
        grid = (latents.shape[3] // patch[1], latents.shape[4] // patch[2])
        k = self._intrinsics(condition.intrinsics, latents, cams)
        rays = self._token_rays(cams, k, latents, grid) if self.rays else None
        prope = self._token_projections(cams, k, latents, grid) if self.attention else None
        return camera_inputs(transformer, cams, grid[0] * grid[1], clips=2, rays=rays, prope=prope)

    @staticmethod
    def _intrinsics(intrinsics: Tensor | None, latents: Tensor, cams: Tensor) -> Tensor:
        """``[B, 3, 3]`` pixels of the decoded video; the world's default when not given."""
        size = (latents.shape[3] * SPATIAL_STRIDE, latents.shape[4] * SPATIAL_STRIDE)
        k = intrinsics if intrinsics is not None else intrinsics_from_fov(DEFAULT_FOV_DEG, *size)
        return k.to(cams).expand(cams.shape[0], 3, 3)

    @staticmethod
    def _token_projections(
        cams: Tensor, intrinsics: Tensor, latents: Tensor, grid: tuple[int, int]
    ) -> tuple[Tensor, Tensor]:
        """PRoPE inputs in token order (source half, then target half): projection
        ``[B, 2 * F_lat * gh * gw, 4, 4]``, (column, row) position ``[2 * F_lat * gh * gw, 2]``."""
        size = (latents.shape[3] * SPATIAL_STRIDE, latents.shape[4] * SPATIAL_STRIDE)
        target = normalized_projection(cams, intrinsics[:, None], size)  # [B, F_lat, 4, 4]
        source = normalized_projection(
            torch.eye(4).to(cams).expand_as(cams), intrinsics[:, None], size
        )
        per_frame = torch.cat([source, target], dim=1)  # [B, 2 * F_lat, 4, 4]
        tokens = grid[0] * grid[1]
        projection = per_frame.repeat_interleave(tokens, dim=1)
        rows, cols = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")
        position = torch.stack([cols, rows], dim=-1).flatten(0, 1).to(cams)  # [gh * gw, 2]
        return projection, position.repeat(per_frame.shape[1], 1)

    @staticmethod
    def _token_rays(
        cams: Tensor, intrinsics: Tensor | None, latents: Tensor, grid: tuple[int, int]
    ) -> Tensor:
        """``[B, 2 * F_lat * gh * gw, 6]`` in token order (source half, then target half)."""
        size = (latents.shape[3] * SPATIAL_STRIDE, latents.shape[4] * SPATIAL_STRIDE)
        k = CameraV2V._intrinsics(intrinsics, latents, cams)[:, None]  # [B, 1, 3, 3]
        target = plucker_rays(invert_pose(cams), k, size, grid)  # [B, F_lat, gh, gw, 6]
        source = plucker_rays(torch.eye(4).to(cams).expand_as(cams), k, size, grid)
        return torch.cat([source.flatten(1, 3), target.flatten(1, 3)], dim=1)

    def output(self, prediction: Tensor, latents: Tensor) -> Tensor:
        return prediction[:, :, latents.shape[2] :]


class ReprojV2V(Conditioning):
    """TrajectoryCrafter: point-cloud render of the source + hole mask as input channels."""

    name = "reproj_v2v"
    accepts = ("cameras", "intrinsics", "source_video", "source_depth", "source_w2c")

    def extra_channels(self, latent_channels: int) -> int:
        return latent_channels + TEMPORAL_STRIDE

    def prepare(
        self, policy: nn.Module, condition: Condition, inputs: ConditionInputs
    ) -> Condition:
        if condition.reproj_latents is None or condition.reproj_mask is None:
            needed = ("source_video", "source_depth", "source_w2c")
            missing = [k for k in needed if getattr(inputs, k) is None]
            if missing or condition.cameras is None or condition.intrinsics is None:
                raise ValueError(
                    "condition: reproj_v2v needs source_video [B, 3, F, H, W], source_depth "
                    "[B, F, H, W], source_w2c [B, F, 4, 4], cameras (relative target path) and "
                    f"intrinsics; missing {missing or 'cameras/intrinsics'}"
                )
            _check_camera_count(condition.cameras, inputs.source_video.shape[2])
            _check_camera_count(inputs.source_w2c, inputs.source_video.shape[2], "source_w2c")
            render, holes = reproject_source(
                inputs.source_video,
                inputs.source_depth,
                inputs.source_w2c,
                condition.cameras,
                condition.intrinsics,
            )
            condition = replace(
                condition, reproj_latents=policy.encode(render), reproj_mask=latent_mask(holes)
            )
        return condition

    def model_input(self, latents: Tensor, condition: Condition) -> Tensor:
        r, m = condition.reproj_latents, condition.reproj_mask
        if r is None or m is None:
            raise ValueError("condition: reproj_v2v needs reproj_latents and reproj_mask (prepare)")
        return torch.cat([latents, r.to(latents), m.to(latents)], dim=1)


def reproject_source(
    source_video: Tensor,  # [B, 3, F, H, W] in [-1, 1]
    source_depth: Tensor,  # [B, F, H, W] z-depth
    source_w2c: Tensor,  # [B, F, 4, 4]
    relative_w2c: Tensor,  # [B, F, 4, 4] target relative to source
    intrinsics: Tensor,  # [B, 3, 3]
) -> tuple[Tensor, Tensor]:
    """Warp each source frame into its target camera: render ``[B, 3, F, H, W]`` (holes -1, i.e.
    black) and holes ``[B, F, H, W]`` bool. Per-frame, so moving objects are where they are."""
    check_intrinsics("intrinsics", intrinsics)
    target_w2c = relative_w2c @ source_w2c
    k = intrinsics[:, None]  # [B, 1, 3, 3]
    out = forward_warp(
        source_video.permute(0, 2, 3, 4, 1),
        source_depth,
        k,
        source_w2c,
        k,
        target_w2c,
        background=-1.0,
    )
    return out.image.permute(0, 4, 1, 2, 3), out.holes


def latent_mask(holes: Tensor) -> Tensor:
    """Pixel holes ``[B, 4k + 1, H, W]`` -> hole share per latent cell, folded like the latents
    (4 pixel frames per latent frame, Wan's inpainting-mask layout): ``[B, 4, k + 1, h, w]``."""
    pooled = F.avg_pool2d(holes.float().flatten(0, 1)[:, None], SPATIAL_STRIDE)
    pooled = pooled.view(*holes.shape[:2], *pooled.shape[-2:])[:, None]  # [B, 1, F, h, w]
    return fold_frames(pooled)


def _check_camera_count(cameras: Tensor, frames: int, name: str = "cameras") -> None:
    if cameras.ndim != 4 or cameras.shape[1] != frames:
        raise ValueError(
            f"{name}: got {tuple(cameras.shape)}, expected [B, {frames}, 4, 4]: one camera per "
            f"frame of the {frames}-frame source video"
        )


def _latent_frame_cameras(cameras: Tensor | None, latent_frames: int) -> Tensor:
    if cameras is None:
        raise ValueError("condition: cameras are required")
    f = cameras.shape[1]
    if f != (latent_frames - 1) * TEMPORAL_STRIDE + 1:
        raise ValueError(
            f"cameras: {f} cameras for {latent_frames} latent frames; expected one per pixel "
            f"frame, {(latent_frames - 1) * TEMPORAL_STRIDE + 1}"
        )
    return cameras[:, ::TEMPORAL_STRIDE]


CONDITIONINGS: dict[str, type[Conditioning]] = {
    c.name: c for c in (Conditioning, WarpedNoiseT2V, CameraV2V, ReprojV2V)
}


def make_conditioning(name: str, **options: object) -> Conditioning:
    """The conditioning ``name``; ``options`` are its constructor arguments (``rays`` for
    camera_v2v), as ``Conditioning.options()`` returns them."""
    check_choice("conditioning", name, tuple(CONDITIONINGS))
    cls = CONDITIONINGS[name]
    if options and cls.options is Conditioning.options:
        raise ValueError(f"options: {name} takes none, got {sorted(options)}")
    return cls(**options)
