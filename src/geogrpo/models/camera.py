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

With ``attention=True`` each block's self-attention also runs a camera-aware branch,
:func:`prope_attention` (PRoPE), between the tokens of one frame index of both clips (target
frame ``f`` and source frame ``f``, whose relative camera is known exactly), reusing the block's
q/k/v projections; its output enters through ``camera_attention_out`` (zero-initialised), so it
too starts from the model without it. Also our addition (in the spirit of ReDirector's rotary
camera encoding, which Geo-Align builds on): the logits see ``P_target P_source^-1``, the
geometry a novel view is made from, instead of having to infer it from added features.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from geogrpo.camera.se3 import check_pose, relative_to_first, w2c_to_c2w

# RoPE base of PRoPE's in-image position half; small because token grids are small (6 x 6 here)
PROPE_ROPE_BASE = 100.0
# What camera_inputs sets on each block for the hooks to read.
_CAMERA_STATE = ("_camera_input", "_camera_rays", "_camera_prope")


def add_camera_conditioning(
    model: nn.Module, rays: bool = False, attention: bool = False
) -> nn.Module:
    """Attach ``camera_encoder`` / ``camera_projector`` (with ``rays`` a ``camera_ray_encoder``,
    with ``attention`` a ``camera_attention_out``) to every block and hook them in."""
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
        if attention:
            if block.attn1.to_q.out_features // block.attn1.heads % 8:
                raise ValueError("model: camera attention (PRoPE) needs a head_dim divisible by 8")
            block.camera_attention_out = nn.Linear(dim, dim)
            nn.init.zeros_(block.camera_attention_out.weight)
            nn.init.zeros_(block.camera_attention_out.bias)
            _keep_projections(block)
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


def _keep_projections(block: nn.Module) -> None:
    """Keep the self-attention's normalised q, k and its v as the Wan processor computes them, so
    the camera branch reuses them instead of running the projections a second time."""
    attn = block.attn1
    block._camera_qkv = {}

    def keep(name: str):
        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            if getattr(block, "_camera_prope", None) is not None:
                block._camera_qkv[name] = output

        return hook

    for name, module in (("q", attn.norm_q), ("k", attn.norm_k), ("v", attn.to_v)):
        module.register_forward_hook(keep(name))


def _make_post_hook(block: nn.Module):
    def hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        prope = getattr(block, "_camera_prope", None)
        if prope is not None:
            if not hasattr(block, "camera_attention_out"):
                raise ValueError("camera attention: the model was built without attention=True")
            qkv = block._camera_qkv
            if qkv.keys() != {"q", "k", "v"}:
                raise RuntimeError(
                    "camera attention: the attention processor did not run attn1.norm_q, "
                    "norm_k and to_v (fused projections are not supported)"
                )
            branch = _camera_branch(module, qkv.pop("q"), qkv.pop("k"), qkv.pop("v"), *prope)
            output = output + block.camera_attention_out(branch)
        return block.camera_projector(output)

    return hook


def _camera_branch(
    attn: nn.Module,
    q: Tensor,  # [B, clips * F * T, D] normalised queries of the block's self-attention
    k: Tensor,  # [B, clips * F * T, D] normalised keys
    v: Tensor,  # [B, clips * F * T, D] values
    projection: Tensor,
    position: Tensor,
    layout: tuple[int, int, int],
) -> Tensor:
    """PRoPE among the tokens of each frame index of all clips (token order clip, frame, token),
    ``projection [B, clips * F * T, 4, 4]``, ``position [clips * F * T, 2]``, ``layout = (clips,
    F, T)``. Returns ``[B, clips * F * T, D]``."""
    clips, frames, per_frame = layout
    b, n, dim = q.shape
    if n != clips * frames * per_frame:
        raise ValueError(
            f"camera attention: {clips} x {frames} frames x {per_frame} tokens do not cover the "
            f"{n} tokens of the input"
        )

    def by_frame(t: Tensor) -> Tensor:  # [B, clips * F * T, ...] -> [B * F, clips * T, ...]
        t = t.reshape(b, clips, frames, per_frame, *t.shape[2:]).transpose(1, 2)
        return t.reshape(b * frames, clips * per_frame, *t.shape[4:])

    q, k, v = (t.unflatten(2, (attn.heads, -1)) for t in (q, k, v))
    pos = by_frame(position.expand(b, *position.shape))
    out = prope_attention(by_frame(q), by_frame(k), by_frame(v), by_frame(projection), pos)
    out = out.reshape(b, frames, clips, per_frame, *out.shape[2:]).transpose(1, 2)
    return out.reshape(b, n, dim)


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
    prope: tuple[Tensor, Tensor] | None = None,
) -> Iterator[None]:
    """Make the next forward passes see cameras ``w2c [B, F_lat, 4, 4]`` (one per latent frame).

    ``clips`` is how many videos are concatenated along frames (2: source + target); each gets
    the same camera features. ``tokens_per_frame`` is ``(H / 8 / 2) * (W / 8 / 2)`` for Wan.
    ``rays`` ``[B, tokens, 6]``: Plücker coordinates per token of the whole input (models built
    with ``rays=True``). ``prope``: ``(projection [B, tokens, 4, 4], position [tokens, 2])``
    per token of the whole input, for the camera-attention branch (``attention=True``).
    """
    if not hasattr(model.blocks[0], "camera_encoder"):
        raise ValueError("model: call add_camera_conditioning(model) first")
    feats = relative_camera_features(w2c).repeat(1, clips, 1)  # [B, clips * F_lat, 12]
    for block in model.blocks:
        block._camera_input = (feats, tokens_per_frame)
        block._camera_rays = rays
        block._camera_prope = (
            None if prope is None else (*prope, (clips, w2c.shape[1], tokens_per_frame))
        )
    try:
        yield
    finally:
        for block in model.blocks:
            for name in _CAMERA_STATE:
                setattr(block, name, None)


def checkpoint_with_camera_inputs(block: nn.Module, *args: object) -> object:
    """Gradient checkpointing of one block (diffusers' ``gradient_checkpointing_func``) that hands
    the recomputation the camera inputs its forward saw: backward runs after
    :func:`camera_inputs` has cleared them, and the default checkpoint would recompute the block
    without cameras (torch then refuses, or the gradients are wrong)."""
    state = {name: getattr(block, name, None) for name in _CAMERA_STATE}
    return checkpoint(
        block.__call__,
        *args,
        use_reentrant=False,
        context_fn=lambda: (nullcontext(), _block_attributes(block, state)),
    )


@contextmanager
def _block_attributes(block: nn.Module, values: dict[str, object]) -> Iterator[None]:
    saved = {name: getattr(block, name, None) for name in values}
    for name, value in values.items():
        setattr(block, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(block, name, value)


def normalized_projection(w2c: Tensor, intrinsics: Tensor, image_size: tuple[int, int]) -> Tensor:
    """``[..., 4, 4]``: ``K' @ w2c`` with ``K'`` the intrinsics in image coordinates of ``[-1, 1]``
    lifted to 4x4, the projective camera of PRoPE (its entries stay O(1) at any resolution)."""
    height, width = image_size
    scale = torch.tensor([2.0 / width, 2.0 / height, 1.0], dtype=w2c.dtype, device=w2c.device)
    k = intrinsics.to(w2c.dtype) * scale[:, None]
    k[..., :2, 2] -= 1.0
    lifted = torch.zeros(*k.shape[:-2], 4, 4, dtype=w2c.dtype, device=w2c.device)
    lifted[..., :3, :3] = k
    lifted[..., 3, 3] = 1.0
    return lifted @ w2c


def _rotate_pairs(x: Tensor, angle: Tensor) -> Tensor:
    """Rotate consecutive pairs of the last dim of ``x [N, L, H, 2m]`` by ``angle [N, L, m]``."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = angle.cos()[:, :, None], angle.sin()[:, :, None]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


def prope_attention(
    q: Tensor,  # [N, L, H, d] per-token queries
    k: Tensor,  # [N, L, H, d]
    v: Tensor,  # [N, L, H, d]
    projection: Tensor,  # [N, L, 4, 4] each token's normalized_projection
    position: Tensor,  # [N, L, 2] each token's (column, row) in its image, in tokens
) -> Tensor:
    """Attention whose logits depend on cameras only through ``P_i P_j^-1`` and on token positions
    only through their difference (PRoPE, Li et al. 2025, "Cameras as Relative Positional
    Encoding"): with ``D_i = diag(P_i, ..., P_i, RoPE2D(x_i))`` on the two halves of each head,
    ``o_i = D_i softmax((D_i^T q_i) . (D_j^-1 k_j)) (D_j^-1 v_j)``. Returns ``[N, L, H, d]``."""
    d = q.shape[-1]
    half = d // 2
    if half % 4 or (d - half) % 4:
        raise ValueError(f"head_dim: PRoPE needs a multiple of 8, got {d}")
    p = projection.to(torch.float32)
    p_inv = torch.linalg.inv(p)
    freqs = PROPE_ROPE_BASE ** (
        -torch.arange((d - half) // 4, dtype=torch.float32, device=q.device) / ((d - half) // 4)
    )
    angle = (position.to(torch.float32)[..., None] * freqs).flatten(-2)  # [N, L, (d - half) / 2]

    def by_camera(x: Tensor, matrix: Tensor) -> Tensor:  # matrix [N, L, 4, 4] on 4-chunks
        chunks = x[..., :half].unflatten(-1, (-1, 4))  # [N, L, H, half / 4, 4]
        return torch.einsum("nlij,nlhcj->nlhci", matrix, chunks).flatten(-2)

    def transform(x: Tensor, matrix: Tensor, sign: float) -> Tensor:
        x = x.to(torch.float32)
        return torch.cat([by_camera(x, matrix), _rotate_pairs(x[..., half:], sign * angle)], -1)

    q_t = transform(q, p.transpose(-1, -2), -1.0)
    k_t = transform(k, p_inv, -1.0)
    v_t = transform(v, p_inv, -1.0)
    out = F.scaled_dot_product_attention(
        q_t.transpose(1, 2), k_t.transpose(1, 2), v_t.transpose(1, 2)
    ).transpose(1, 2)  # [N, L, H, d]
    return transform(out, p, 1.0).to(q.dtype)
