"""Throughput of the procedural world: clips per second at 96x96x17 and 256x256x17.

The renderer runs on every dataset item and every evaluation, so its cost decides how large a
CPU-built dataset can be. Timed over a few scenes of the train domain along an orbit preset,
3x3 supersampling (the default), on the CPU threads torch is given.
"""

import time

import torch

from geogrpo.camera.presets import preset_trajectory
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


def main() -> None:
    print(f"render, {FRAMES} frames per clip, {torch.get_num_threads()} CPU threads\n")
    print(f"{'size':>12}{'supersample':>13}{'clips/s':>10}{'s/clip':>9}")
    for size, clips, ss in ((96, 6, 3), (96, 6, 1), (256, 2, 3)):
        cps = clips_per_second(size, clips, ss)
        print(f"{f'{size}x{size}':>12}{ss:>13}{cps:>10.2f}{1 / cps:>9.2f}")


if __name__ == "__main__":
    main()
