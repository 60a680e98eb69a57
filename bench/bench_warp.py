"""How fast are noise transport and forward image warping at the sizes we warp? (frames/s)

``warp_noise`` runs once per frame of every sampled video, so it must stay negligible next to a
diffusion step: timed at the Wan latent of a 480 x 832 video (16 x 60 x 104), at our default
96 x 96 demo latent (4 x 12 x 12) and at full resolution (3 x 480 x 832), over 20 frames of a
homography flow (camera moving forward and sideways in front of a plane), on the CPU threads
torch is given. ``subdivisions`` > 1 is the sub-pixel (fragment) variant, ``s^2`` times the work.

``forward_warp`` (depth-based reprojection with a z-buffer, the DEVIS-GRPO / TrajectoryCrafter
conditioning) is timed at 480 x 832, at 96 x 96 and at 64 x 64 RGB for the same camera motion.
"""

import time

import torch

from geogrpo.camera.se3 import intrinsics_from_fov, make_pose
from geogrpo.geometry.homography import fronto_parallel_homography, homography_flow
from geogrpo.geometry.noise_warp import warp_noise
from geogrpo.geometry.warp import forward_warp

FRAMES = 20
SIZES = (
    ("Wan latent 480x832/8", 16, 60, 104),
    ("default latent", 4, 12, 12),
    ("full resolution", 3, 480, 832),
)
SUBDIVISIONS = (1, 2, 4)
IMAGE_SIZES = (("full resolution", 480, 832), ("default video", 96, 96), ("small", 64, 64))
W2C_DST = make_pose(
    torch.eye(3, dtype=torch.float64), torch.tensor([-0.02, 0.0, -0.05], dtype=torch.float64)
)


def camera_flow(height: int, width: int) -> torch.Tensor:
    """Flow ``[H, W, 2]`` of a camera moving 5% of the plane depth forward and 2% right."""
    k = intrinsics_from_fov(60.0, height, width)
    h = fronto_parallel_homography(k, torch.eye(4, dtype=torch.float64), W2C_DST, 1.0)
    return homography_flow(h, height, width).float()


def frames_per_second(channels: int, height: int, width: int, subdivisions: int) -> float:
    g = torch.Generator().manual_seed(0)
    flow = camera_flow(height, width)
    noise = torch.randn(channels, height, width, generator=g)
    warp_noise(noise, flow, g, subdivisions=subdivisions)  # warm-up
    start = time.perf_counter()
    for _ in range(FRAMES):
        noise = warp_noise(noise, flow, g, subdivisions=subdivisions)
    return FRAMES / (time.perf_counter() - start)


def warp_frames_per_second(height: int, width: int) -> float:
    g = torch.Generator().manual_seed(0)
    k = intrinsics_from_fov(60.0, height, width).float()
    image = torch.rand(height, width, 3, generator=g)
    depth = 1.0 + torch.rand(height, width, generator=g)
    eye, dst = torch.eye(4), W2C_DST.float()
    forward_warp(image, depth, k, eye, k, dst)  # warm-up
    start = time.perf_counter()
    for _ in range(FRAMES):
        forward_warp(image, depth, k, eye, k, dst)
    return FRAMES / (time.perf_counter() - start)


def main() -> None:
    print(f"warp_noise, {FRAMES} frames each, {torch.get_num_threads()} CPU threads\n")
    header = f"{'size':<22}{'C x H x W':>14}" + "".join(f"{f'fps s={s}':>12}" for s in SUBDIVISIONS)
    print(header)
    print("-" * len(header))
    for name, c, h, w in SIZES:
        cells = "".join(f"{frames_per_second(c, h, w, s):>12.1f}" for s in SUBDIVISIONS)
        print(f"{name:<22}{f'{c}x{h}x{w}':>14}{cells}")
    print(f"\nforward_warp (z-buffer), RGB float32, {FRAMES} frames each\n")
    print(f"{'size':<22}{'H x W':>14}{'fps':>12}")
    print("-" * 48)
    for name, h, w in IMAGE_SIZES:
        print(f"{name:<22}{f'{h}x{w}':>14}{warp_frames_per_second(h, w):>12.1f}")


if __name__ == "__main__":
    main()
