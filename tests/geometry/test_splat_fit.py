"""Fitting splats to clips: lifting, the fit itself, orbited cameras."""

import math

import pytest
import torch

from geogrpo.camera.presets import preset_trajectory
from geogrpo.camera.se3 import invert_pose, make_intrinsics
from geogrpo.geometry.projection import project_points
from geogrpo.geometry.splat_fit import fit_splats, orbit_views, render_views, splats_from_depth
from geogrpo.rewards.fidelity import masked_psnr
from geogrpo.world.datasets import scene_for
from geogrpo.world.paths import make_path
from geogrpo.world.render import render


@pytest.fixture(scope="module")
def clip():
    w2c = preset_trajectory("arc_left", 9) @ make_path("walking", 9, 3)
    return render(scene_for("val", 2, dynamic=False), w2c, 32, 32)


def psnr(a, b):
    return float(masked_psnr(a[None], b[None], torch.ones(a.shape[:3], dtype=torch.bool)[None]))


def lifted(clip, n=600, idx=(0, 4, 8)):
    idx = list(idx)
    k = clip.intrinsics.float().expand(len(idx), 3, 3)
    gen = torch.Generator().manual_seed(0)
    splats = splats_from_depth(
        clip.rgb[idx], clip.depth[idx], clip.w2c[idx].float(), k, n, None, gen
    )
    return splats, k, idx


def test_lifting_with_true_depth_renders_the_unseen_middle_views(clip):
    """Splats from frames 0, 4, 8 at their true depth re-render frame 2 and 6 far better than
    a frame of a different scene does (the fit frames and the held-out ones share the scene)."""
    splats, k, _ = lifted(clip)
    views = clip.w2c[[2, 6]].float()
    images, alphas = render_views(splats, torch.zeros(3), views, k[:2], 32, 32)
    other = render(scene_for("val", 5, dynamic=False), clip.w2c, 32, 32).rgb[[2, 6]]
    truth = clip.rgb[[2, 6]]
    assert psnr(images, truth) > psnr(other, truth) + 3
    sky = clip.depth[[2, 6]] == 0
    assert float(alphas[~sky].mean()) > 0.8  # surfaces are covered


def test_fit_lowers_the_photometric_error_and_keeps_the_splats_valid(clip):
    splats, k, idx = lifted(clip, n=300)
    fit = fit_splats(splats, clip.rgb[idx], clip.w2c[idx].float(), k, steps=15, lr=0.05)
    assert fit.losses.shape == (16,)
    assert float(fit.losses[-1]) < 0.8 * float(fit.losses[0])
    assert bool(((fit.splats.opacities >= 0) & (fit.splats.opacities <= 1)).all())
    assert bool((fit.splats.scales > 0).all())
    assert fit.splats.means.requires_grad is False


def test_fit_with_zero_steps_is_the_initialisation(clip):
    splats, k, idx = lifted(clip, n=100)
    fit = fit_splats(splats, clip.rgb[idx], clip.w2c[idx].float(), k, steps=0)
    assert fit.losses.shape == (1,)
    torch.testing.assert_close(fit.splats.means, splats.means)
    # colours go through a logit and back (clamped at 1e-3 from 0 and 1)
    torch.testing.assert_close(fit.splats.colors, splats.colors.clamp(1e-3, 1 - 1e-3))


def test_lifting_without_depth_raises():
    with pytest.raises(ValueError, match="no pixel has a positive depth"):
        splats_from_depth(
            torch.rand(2, 8, 8, 3),
            torch.zeros(2, 8, 8),
            torch.eye(4).expand(2, 4, 4),
            make_intrinsics(8.0, 8.0, 4.0, 4.0).float().expand(2, 3, 3),
        )


def test_orbit_views_keep_the_pivot_centred_at_the_same_distance_and_the_angle():
    w2c = preset_trajectory("pan_right", 3).float()
    pivot_depth = torch.tensor([2.0, 3.0, 4.0])
    views = orbit_views(w2c, pivot_depth, 20.0)
    assert views.shape == (6, 4, 4)
    c2w = invert_pose(w2c)
    pivots = c2w[:, :3, 3] + pivot_depth[:, None] * c2w[:, :3, 2]  # [3, 3]
    k = make_intrinsics(50.0, 50.0, 32.0, 32.0).float()
    pix, z = project_points(pivots.repeat(2, 1)[:, None], k, views)
    torch.testing.assert_close(pix[:, 0], torch.full((6, 2), 32.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(z[:, 0], pivot_depth.repeat(2), atol=1e-5, rtol=0)
    new_axes = invert_pose(views)[:, :3, 2]
    cosines = (new_axes * c2w[:, :3, 2].repeat(2, 1)).sum(-1)
    torch.testing.assert_close(cosines, torch.full((6,), math.cos(math.radians(20))))
    # the two orbits go opposite ways along the camera's right axis
    side = (
        (invert_pose(views)[:, :3, 3] - c2w[:, :3, 3].repeat(2, 1)) * c2w[:, :3, 0].repeat(2, 1)
    ).sum(-1)
    assert bool((side[:3] < 0).all()) and bool((side[3:] > 0).all())


def test_fit_splats_works_inside_no_grad():
    """Rewards are scored under torch.no_grad(); the fit must still optimise."""
    import torch

    from geogrpo.geometry.splat import GaussianSplats
    from geogrpo.geometry.splat_fit import fit_splats

    gen = torch.Generator().manual_seed(0)
    n = 16
    init = GaussianSplats(
        means=torch.rand(n, 3, generator=gen, dtype=torch.float64)
        - 0.5
        + torch.tensor([0.0, 0.0, 3.0], dtype=torch.float64),
        scales=torch.full((n, 3), 0.2, dtype=torch.float64),
        rotations=None,
        colors=torch.full((n, 3), 0.5, dtype=torch.float64),
        opacities=torch.full((n,), 0.5, dtype=torch.float64),
    )
    frames = torch.rand(1, 8, 8, 3, generator=gen)
    k = torch.tensor([[8.0, 0, 4], [0, 8.0, 4], [0, 0, 1]], dtype=torch.float64)[None]
    with torch.no_grad():
        fit = fit_splats(init, frames, torch.eye(4, dtype=torch.float64)[None], k, steps=5)
    assert float(fit.losses[-1]) < float(fit.losses[0])
