"""Throughput of the procedural world: the renderer per-frame (as before issue 25) vs batched,
data-set building in pairs/s, and the ground-truth camera evaluator in s/clip.

The renderer runs on every dataset item and every evaluation, so its cost decides how large a
CPU-built dataset can be. Clips are 17 frames of train-domain scenes along the arc_left preset,
3x3 supersampling (the default) unless a row says otherwise. ``per-frame`` is the renderer as it
was (below: each frame cast alone, every primitive tested on every ray, boolean-mask shading),
``batched`` is :func:`geogrpo.world.render.render`; the two run interleaved on the same scenes
and must draw the same pictures. ``build_missing`` is timed on fresh train pairs with 1 and 2
worker processes of one thread each (start-up included); 4,608 pairs are what the camera policy
trains on. The evaluator is timed on 96x96 clips whose cameras are perturbed by 1-3 deg /
0.05-0.2.
"""

import statistics
import tempfile
import time

import torch

from geogrpo.camera.presets import preset_trajectory
from geogrpo.camera.se3 import intrinsics_from_fov, w2c_to_c2w
from geogrpo.world.datasets import MultiViewPairs, build_missing
from geogrpo.world.evaluator import evaluate_cameras, perturb_cameras
from geogrpo.world.paths import make_path
from geogrpo.world.render import DEFAULT_FOV_DEG, _hit, _surface, render
from geogrpo.world.scene import FPS, Scene, generate_scene
from geogrpo.world.textures import evaluate_texture

FRAMES = 17
CAMERA_POLICY_PAIRS = 4608


def per_frame_render(scene: Scene, w2c: torch.Tensor, size: int, ss: int) -> torch.Tensor:
    """RGB ``[F, H, W, 3]`` the way the renderer worked before issue 25: one cast per frame,
    every primitive on every ray, shading through boolean masks (the reference of the bench)."""
    k = intrinsics_from_fov(DEFAULT_FOV_DEG, size, size)
    grid = (
        torch.arange(size, dtype=torch.float64)[:, None]
        + (torch.arange(ss, dtype=torch.float64) + 0.5) / ss
    )
    vv, uu = torch.meshgrid(grid.reshape(-1), grid.reshape(-1), indexing="ij")
    pix = torch.stack([uu, vv, torch.ones_like(uu)], dim=-1).reshape(-1, 3)
    rays_cam = pix @ torch.linalg.inv(k).T
    c2w = w2c_to_c2w(w2c)
    light = torch.tensor(scene.light_direction)
    light = light / light.norm()
    frames = []
    for i in range(w2c.shape[0]):
        d = (rays_cam @ c2w[i, :3, :3].T).float()  # [R, 3]
        o = c2w[i, None, :3, 3].float()  # [1, 3]
        t = torch.tensor([i / FPS], dtype=torch.float64)
        centers = [
            (torch.tensor(p.center, dtype=torch.float64) + p.motion.offset(t)).float()
            for p in scene.primitives
        ]  # [1, 3] each
        hits = torch.stack(
            [_hit(p, o, d, c) for p, c in zip(scene.primitives, centers, strict=True)]
        )
        best, index = hits.min(dim=0)
        index = torch.where(torch.isfinite(best), index, torch.full_like(index, -1))
        elevation = (-d[:, 1] / d.norm(dim=-1)).clamp(0, 1)[:, None] ** 0.6
        color = (
            torch.tensor(scene.sky_horizon) * (1 - elevation)
            + torch.tensor(scene.sky_top) * elevation
        )
        for j, (prim, c) in enumerate(zip(scene.primitives, centers, strict=True)):
            mask = index == j
            if not bool(mask.any()):
                continue
            x = o + best[mask, None] * d[mask]
            normal, uv = _surface(prim, x, d[mask], c)
            lambert = (-(normal @ light)).clamp_min(0)[:, None]
            albedo = evaluate_texture(prim.texture, uv)
            color[mask] = albedo * (scene.ambient + (1 - scene.ambient) * lambert)
        frames.append(color.clamp(0, 1).view(size, ss, size, ss, 3).mean(dim=(1, 3)))
    return torch.stack(frames)


def per_frame_vs_batched(size: int, clips: int, ss: int) -> tuple[float, ...]:
    """Median wall s/clip of the per-frame reference and of the batched renderer, interleaved
    on the same scenes, their median CPU s/clip (steadier on a shared machine), and the largest
    difference of their pictures."""
    w2c = preset_trajectory("arc_left", FRAMES)
    render(generate_scene(0), w2c[:2], size, size, supersample=ss)  # warm-up
    old, new, old_cpu, new_cpu, diff = [], [], [], [], 0.0
    for seed in range(clips):
        scene = generate_scene(seed)
        start, cpu = time.perf_counter(), time.process_time()
        reference = per_frame_render(scene, w2c, size, ss)
        old.append(time.perf_counter() - start)
        old_cpu.append(time.process_time() - cpu)
        start, cpu = time.perf_counter(), time.process_time()
        batched = render(scene, w2c, size, size, supersample=ss)
        new.append(time.perf_counter() - start)
        new_cpu.append(time.process_time() - cpu)
        diff = max(diff, float((reference - batched.rgb).abs().max()))
    medians = (statistics.median(t) for t in (old, new, old_cpu, new_cpu))
    return (*medians, diff)


def evaluator_seconds_per_clip(clips: int = 4) -> float:
    total = 0.0
    for seed in range(clips):
        gen = torch.Generator().manual_seed(seed)
        requested = make_path("walking", FRAMES, seed=seed)
        actual = perturb_cameras(requested, gen)
        scene = generate_scene(seed)
        reference, generated = render(scene, requested, 96, 96), render(scene, actual, 96, 96)
        start = time.perf_counter()
        evaluate_cameras(
            generated.rgb,
            reference.rgb,
            reference.depth,
            reference.intrinsics,
            requested,
            valid_mask=reference.static_surface,
        )
        total += time.perf_counter() - start
    return total / clips


def pairs_per_second(workers: int, pairs: int) -> float:
    with tempfile.TemporaryDirectory() as cache:
        ds = MultiViewPairs("train", pairs, cache_dir=cache)
        start = time.perf_counter()
        build_missing(ds, range(pairs), workers)
        return pairs / (time.perf_counter() - start)


def main() -> None:
    print(f"render, {FRAMES} frames per clip, {torch.get_num_threads()} torch thread(s)\n")
    print(
        "| size | supersample | clips | per-frame s/clip | batched s/clip | speed-up "
        "| CPU s/clip, per-frame / batched | max diff |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size, clips, ss in ((96, 5, 3), (96, 5, 1), (256, 2, 3)):
        old, new, old_cpu, new_cpu, diff = per_frame_vs_batched(size, clips, ss)
        print(
            f"| {size}x{size} | {ss} | {clips} | {old:.3f} | {new:.3f} | {old / new:.2f}x "
            f"| {old_cpu:.3f} / {new_cpu:.3f} ({old_cpu / new_cpu:.2f}x) | {diff:.1e} |"
        )
    print(f"\nevaluate_cameras, 96x96x{FRAMES}: {evaluator_seconds_per_clip():.2f} s per clip\n")
    rates = {workers: pairs_per_second(workers, 8 * workers) for workers in (1, 2)}
    print(f"\nbuild_missing, fresh train pairs 96x96x{FRAMES} (2 clips each):\n")
    print(f"| workers | pairs | pairs/s | {CAMERA_POLICY_PAIRS:,} pairs would take |")
    print("|---|---|---|---|")
    for workers, rate in rates.items():
        minutes = CAMERA_POLICY_PAIRS / rate / 60
        print(f"| {workers} | {8 * workers} | {rate:.2f} | {minutes:.0f} min |")
    print(
        f"\n2 workers: x{rates[2] / rates[1]:.2f} of 1. 16 workers each at 1 worker's rate (16 "
        f"such cores, an upper bound): {CAMERA_POLICY_PAIRS / rates[1] / 16 / 60:.1f} min for "
        f"{CAMERA_POLICY_PAIRS:,} pairs."
    )


if __name__ == "__main__":
    main()
