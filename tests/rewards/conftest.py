import pytest
import torch

from geogrpo.camera.presets import preset_trajectory
from geogrpo.world.datasets import scene_for
from geogrpo.world.paths import make_path
from geogrpo.world.render import render


@pytest.fixture(scope="session")
def dynamic_clip():
    """A 48x48, 17-frame val clip with a moving object, along arc_left on a walking path."""
    w2c = preset_trajectory("arc_left", 17) @ make_path("walking", 17, 5)
    return render(scene_for("val", 3, dynamic=True), w2c, 48, 48)


@pytest.fixture(scope="session")
def static_clip():
    w2c = preset_trajectory("pan_right", 17) @ make_path("walking", 17, 7)
    return render(scene_for("val", 4, dynamic=False), w2c, 48, 48)


def jitter_rotations(w2c: torch.Tensor, amplitude: float, seed: int = 0) -> torch.Tensor:
    """Cameras ``[B, F, 4, 4]`` rotated per frame by noise of std ``amplitude`` rad, not frame 0."""
    from geogrpo.camera.se3 import so3_exp

    g = torch.Generator().manual_seed(seed)
    noise = so3_exp(amplitude * torch.randn(*w2c.shape[:2], 3, generator=g, dtype=torch.float64))
    out = w2c.clone()
    out[:, 1:, :3, :3] = noise[:, 1:] @ w2c[:, 1:, :3, :3]
    out[:, 1:, :3, 3] = (noise[:, 1:] @ w2c[:, 1:, :3, 3:])[..., 0]
    return out
