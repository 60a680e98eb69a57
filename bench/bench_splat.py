"""Cost of the pure-torch Gaussian splat renderer (the reference; gsplat is the CUDA backend).

World-R1's reconstruction reward fits Gaussians to every generated clip, so the forward and
backward cost at small sizes matters. 64x64, 200 random Gaussians, float32, after a warm-up.
"""

import time

import torch

from geogrpo.camera.se3 import intrinsics_from_fov
from geogrpo.geometry.splat import GaussianSplats, render_splats


def main() -> None:
    g = torch.Generator().manual_seed(0)
    n, size, reps = 200, 64, 5
    means = torch.randn(n, 3, generator=g) * torch.tensor([1.0, 1.0, 0.5]) + torch.tensor(
        [0, 0, 4.0]
    )
    params = [
        means,
        torch.rand(n, 3, generator=g) * 0.2 + 0.05,
        torch.randn(n, 4, generator=g),
        torch.rand(n, 3, generator=g),
        torch.rand(n, generator=g) * 0.9,
    ]
    for p in params:
        p.requires_grad_(True)
    k, w2c = intrinsics_from_fov(60.0, size, size).float(), torch.eye(4)

    def run(backward: bool) -> float:
        start = time.perf_counter()
        for _ in range(reps):
            out = render_splats(GaussianSplats(*params), w2c, k, size, size)
            if backward:
                out.image.sum().backward()
        return (time.perf_counter() - start) / reps

    run(True)  # warm-up
    print(f"render_splats {size}x{size}, {n} Gaussians, {torch.get_num_threads()} CPU threads")
    print(f"forward           {1000 * run(False):8.1f} ms")
    print(f"forward+backward  {1000 * run(True):8.1f} ms")


if __name__ == "__main__":
    main()
