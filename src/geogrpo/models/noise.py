"""World-R1's implicit camera conditioning: initial latent noise that already moves with the camera.

Camera words -> extrinsics -> homography flow of a plane ahead -> discrete noise transport
(:mod:`geogrpo.geometry.noise_warp`), at latent resolution and latent frame rate: a Wan latent
frame ``k > 0`` stands for pixel frames ``4k-3 .. 4k``, so its noise is warped by the camera
motion from pixel frame ``4(k-1)`` to ``4k``. Every latent frame stays i.i.d. N(0, 1).
"""

from __future__ import annotations

import torch
from torch import Tensor

from geogrpo.camera.se3 import check_intrinsics, check_pose, scale_intrinsics
from geogrpo.geometry.homography import trajectory_homography_flow
from geogrpo.geometry.noise_warp import warp_noise_video
from geogrpo.utils.checks import check_int_range

TEMPORAL_STRIDE = 4  # Wan VAE: 4k + 1 frames -> k + 1 latent frames


def warped_initial_noise(
    w2c: Tensor,  # [F, 4, 4], F = 4k + 1 pixel frames
    intrinsics: Tensor,  # [3, 3] for images of image_size
    image_size: tuple[int, int],
    channels: int,
    spatial_stride: int = 8,
    plane_depth: float = 4.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Noise ``[C, F_lat, h, w]`` whose frames follow the camera (Go-with-the-Flow, World-R1)."""
    check_pose("w2c", w2c)
    check_intrinsics("intrinsics", intrinsics)
    f = w2c.shape[0]
    if w2c.ndim != 3 or (f - 1) % TEMPORAL_STRIDE:
        raise ValueError(
            f"w2c: expected [4k + 1, 4, 4] cameras (Wan frame counts), got {tuple(w2c.shape)}"
        )
    check_int_range("channels", channels, 1)
    height, width = image_size
    if height % spatial_stride or width % spatial_stride:
        raise ValueError(
            f"image_size: {height}x{width} is not divisible by the VAE stride {spatial_stride}"
        )
    h, w = height // spatial_stride, width // spatial_stride
    k_latent = scale_intrinsics(intrinsics, w / width, h / height)
    keyframes = w2c[::TEMPORAL_STRIDE]  # [F_lat, 4, 4]
    base = torch.randn(channels, h, w, generator=generator, dtype=torch.float32)
    if keyframes.shape[0] == 1:
        return base[:, None]
    flows = trajectory_homography_flow(k_latent, keyframes, plane_depth, h, w).float()
    return warp_noise_video(base, flows, generator).transpose(0, 1)  # [C, F_lat, h, w]
