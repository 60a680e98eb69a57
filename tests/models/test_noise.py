"""Warped initial noise: Wan latent layout, unit Gaussian frames, motion that follows the camera."""

import pytest
import torch

from geogrpo.camera.keywords import camera_keywords_to_trajectory
from geogrpo.camera.se3 import intrinsics_from_fov
from geogrpo.models.noise import warped_initial_noise

K = intrinsics_from_fov(60.0, 96, 96)


def test_layout_and_statistics():
    w2c = camera_keywords_to_trajectory("the camera dollies forward while panning left", 17)
    noise = warped_initial_noise(
        w2c, K, (96, 96), channels=16, generator=torch.Generator().manual_seed(0)
    )
    assert noise.shape == (16, 5, 12, 12)
    assert abs(float(noise.mean())) < 0.05 and abs(float(noise.var()) - 1) < 0.06


def test_static_camera_keeps_the_noise_and_a_pan_moves_it():
    gen = torch.Generator().manual_seed(1)
    still = warped_initial_noise(
        camera_keywords_to_trajectory("the camera stays still", 9),
        K,
        (96, 96),
        channels=4,
        generator=gen,
    )
    torch.testing.assert_close(still[:, 1], still[:, 0])
    moving = warped_initial_noise(
        camera_keywords_to_trajectory("the camera quickly pans left", 9),
        K,
        (96, 96),
        channels=4,
        generator=torch.Generator().manual_seed(1),
    )
    assert not torch.equal(moving[:, 1], moving[:, 0])
    # Panning left moves content right: frame 1 is frame 0 shifted right by a few latent pixels.
    best = max(
        range(0, 4), key=lambda s: float((moving[:, 1, :, s:] * moving[:, 0, :, : 12 - s]).mean())
    )
    assert best >= 1


def test_bad_input():
    w2c = camera_keywords_to_trajectory("pan left", 16)
    with pytest.raises(ValueError, match=r"^w2c: expected \[4k \+ 1"):
        warped_initial_noise(w2c, K, (96, 96), channels=4)
    w2c = camera_keywords_to_trajectory("pan left", 17)
    with pytest.raises(ValueError, match="^image_size"):
        warped_initial_noise(w2c, K, (90, 96), channels=4)
