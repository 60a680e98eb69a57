"""Throughput of the procedural world: render clips/s at 96x96x17 and 256x256x17, evaluator s/clip.

The renderer runs on every dataset item and every evaluation, so its cost decides how large a
CPU-built dataset can be. Timed over a few scenes of the train domain along an orbit preset,
3x3 supersampling (the default), on the CPU threads torch is given. The ground-truth-anchored
evaluator is timed on 17-frame 96x96 clips whose cameras are perturbed by 1-3 deg / 0.05-0.2.
Building a data set (``build_missing``) is timed with 1 and with as many worker processes as
there are CPUs, side by side on the same items.
"""

import os
import tempfile
import time

import torch

from geogrpo.camera.presets import preset_trajectory
from geogrpo.world.datasets import MultiViewPairs, build_missing
from geogrpo.world.evaluator import evaluate_cameras, perturb_cameras
from geogrpo.world.paths import make_path
from geogrpo.world.render import render
from geogrpo.world.scene import generate_scene

FRAMES = 17


def clips_per_second(size: int, clips: int, supersample: int = 3) -> float:
    w2c = preset_trajectory("arc_left", FRAMES)
    scenes = [generate_scene(seed) for seed in range(clips)]
    render(scenes[0], w2c[:2], size, size, supersample=supersample)  # warm-up
    start = time.perf_counter()
    for scene in scenes:
        render(scene, w2c, size, size, supersample=supersample)
    return clips / (time.perf_counter() - start)


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
    print(f"render, {FRAMES} frames per clip, {torch.get_num_threads()} CPU threads\n")
    print(f"{'size':>12}{'supersample':>13}{'clips/s':>10}{'s/clip':>9}")
    for size, clips, ss in ((96, 6, 3), (96, 6, 1), (256, 2, 3)):
        cps = clips_per_second(size, clips, ss)
        print(f"{f'{size}x{size}':>12}{ss:>13}{cps:>10.2f}{1 / cps:>9.2f}")
    print(f"\nevaluate_cameras, 96x96x{FRAMES}: {evaluator_seconds_per_clip():.2f} s per clip")
    cpus = os.cpu_count() or 1
    serial, parallel = pairs_per_second(1, 12 * cpus), pairs_per_second(cpus, 12 * cpus)
    print(
        f"\nbuild_missing, {12 * cpus} train pairs 96x96x{FRAMES}: {serial:.2f} pairs/s with 1 "
        f"worker, {parallel:.2f} with {cpus} (x{parallel / serial:.2f}, worker start-up included)"
    )


if __name__ == "__main__":
    main()
