"""ReCamMaster-style camera conditioning for a diffusers ``WanTransformer3DModel``.

Each transformer block gets a ``camera_encoder`` (linear map of the flattened 3x4 relative
extrinsics of a latent frame to the model width, zero-initialised) whose output is added to the
self-attention input of every token of that frame, and a ``camera_projector`` (identity-
initialised) applied to the self-attention output (Bai et al. 2025, ReCamMaster sec. 3.2). At
initialisation the model is exactly the pretrained one; only the camera modules (names
containing ``camera``) need training. The source video's tokens are concatenated along the frame
axis before the target's; both halves receive the target cameras, as in ReCamMaster.

With ``rays=True`` each block also gets a ``camera_ray_encoder`` (linear on the 6 Plücker
coordinates of the ray through each token's centre, zero-initialised, CameraCtrl-style) whose
output is added to that token alone. This is our addition for the embedded tiny models, not
ReCamMaster's: a 4-layer DiT cannot work out from 12 numbers per frame where each of its tokens
looks, a ray per token tells it. Off by default, so ReCamMaster-layout weights load unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor, nn

from geogrpo.camera.se3 import check_pose, relative_to_first, w2c_to_c2w


def add_camera_conditioning(model: nn.Module, rays: bool = False) -> nn.Module:
    """Attach ``camera_encoder`` / ``camera_projector`` (and with ``rays`` a
    ``camera_ray_encoder``) to every block and hook them in."""
    blocks = getattr(model, "blocks", None)
    if blocks is None or not len(blocks):
        raise ValueError("model: expected a WanTransformer3DModel with transformer blocks")
    dim = blocks[0].attn1.to_q.in_features
    for block in blocks:
        if hasattr(block, "camera_encoder"):
            raise ValueError("model: camera conditioning is already attached")
        block.camera_encoder = nn.Linear(12, dim)
        nn.init.zeros_(block.camera_encoder.weight)
        nn.init.zeros_(block.camera_encoder.bias)
        block.camera_projector = nn.Linear(dim, dim)
        nn.init.eye_(block.camera_projector.weight)
        nn.init.zeros_(block.camera_projector.bias)
        if rays:
            block.camera_ray_encoder = nn.Linear(6, dim)
            nn.init.zeros_(block.camera_ray_encoder.weight)
            nn.init.zeros_(block.camera_ray_encoder.bias)
        block.attn1.register_forward_pre_hook(_make_pre_hook(block))
        block.attn1.register_forward_hook(_make_post_hook(block))
    model._camera_tokens = None
    return model


def _make_pre_hook(block: nn.Module):
    def hook(module: nn.Module, args: tuple) -> tuple:
        cams = getattr(block, "_camera_input", None)
        if cams is None:
            return args
        frames, repeat = cams  # [B, F_lat, 12], tokens per frame
        emb = block.camera_encoder(frames.to(args[0].dtype))  # [B, F_lat, D]
        tokens = emb.repeat_interleave(repeat, dim=1)  # [B, F_lat * tokens per frame, D]
        if tokens.shape[1] != args[0].shape[1]:
            raise ValueError(
                f"cameras: {frames.shape[1]} camera frames x {repeat} tokens do not cover the "
                f"{args[0].shape[1]} tokens of the input"
            )
        rays = getattr(block, "_camera_rays", None)  # [B, tokens, 6]
        if rays is not None:
            if not hasattr(block, "camera_ray_encoder"):
                raise ValueError("rays: the model was built without rays=True")
            if rays.shape[1] != args[0].shape[1]:
                raise ValueError(
                    f"rays: {rays.shape[1]} rays for the {args[0].shape[1]} tokens of the input"
                )
            tokens = tokens + block.camera_ray_encoder(rays.to(args[0].dtype))
        return (args[0] + tokens, *args[1:])

    return hook


def _make_post_hook(block: nn.Module):
    def hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        return block.camera_projector(output)

    return hook


def relative_camera_features(w2c: Tensor) -> Tensor:
    """``[B, F, 12]``: flattened 3x4 camera-to-world poses relative to each clip's first camera."""
    check_pose("w2c", w2c)
    if w2c.ndim != 4:
        raise ValueError(f"w2c: expected [B, F, 4, 4], got {tuple(w2c.shape)}")
    return w2c_to_c2w(relative_to_first(w2c))[..., :3, :].flatten(-2)


@contextmanager
def camera_inputs(
    model: nn.Module,
    w2c: Tensor,
    tokens_per_frame: int,
    clips: int = 2,
    rays: Tensor | None = None,
) -> Iterator[None]:
    """Make the next forward passes see cameras ``w2c [B, F_lat, 4, 4]`` (one per latent frame).

    ``clips`` is how many videos are concatenated along frames (2: source + target); each gets
    the same camera features. ``tokens_per_frame`` is ``(H / 8 / 2) * (W / 8 / 2)`` for Wan.
    ``rays`` ``[B, tokens, 6]``: Plücker coordinates per token of the whole input (models built
    with ``rays=True``).
    """
    if not hasattr(model.blocks[0], "camera_encoder"):
        raise ValueError("model: call add_camera_conditioning(model) first")
    feats = relative_camera_features(w2c).repeat(1, clips, 1)  # [B, clips * F_lat, 12]
    for block in model.blocks:
        block._camera_input = (feats, tokens_per_frame)
        block._camera_rays = rays
    try:
        yield
    finally:
        for block in model.blocks:
            block._camera_input = None
            block._camera_rays = None
