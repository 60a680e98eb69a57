"""Fundamental matrices, Sampson error, and OpenCV correspondences on real-looking frames."""

import math

import pytest
import torch

from geogrpo.camera.se3 import axis_rotation, make_intrinsics, make_pose
from geogrpo.geometry.epipolar import (
    fundamental_from_cameras,
    fundamental_from_correspondences,
    match_features,
    sampson_error,
)
from geogrpo.geometry.projection import project_points

K = make_intrinsics(300.0, 300.0, 160.0, 120.0)
W2C1 = torch.eye(4, dtype=torch.float64)
W2C2 = make_pose(axis_rotation("y", -0.1), torch.tensor([0.6, 0.05, 0.1], dtype=torch.float64))


def _scene(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(n, 3, generator=g, dtype=torch.float64) * torch.tensor(
        [4.0, 3.0, 4.0]
    ) + torch.tensor([-2.0, -1.5, 4.0])
    p1, _ = project_points(pts, K, W2C1)
    p2, _ = project_points(pts, K, W2C2)
    return p1, p2


def test_sampson_error_is_zero_for_exact_correspondences():
    f = fundamental_from_cameras(K, W2C1, K, W2C2)
    p1, p2 = _scene()
    assert float(sampson_error(f, p1, p2).max()) < 1e-9


def test_sampson_error_grows_linearly_with_pixel_noise():
    f = fundamental_from_cameras(K, W2C1, K, W2C2)
    p1, p2 = _scene(5000)
    g = torch.Generator().manual_seed(1)
    means = []
    for sigma in (0.5, 1.0, 2.0):
        n1 = torch.randn(p1.shape, generator=g, dtype=torch.float64) * sigma
        n2 = torch.randn(p2.shape, generator=g, dtype=torch.float64) * sigma
        means.append(float(sampson_error(f, p1 + n1, p2 + n2).mean()))
    # Sampson's distance is the first-order distance in the joint 4D space of both points; for
    # isotropic noise it is |N(0, sigma^2)| along the normal, with mean sigma sqrt(2 / pi).
    assert means[1] / means[0] == pytest.approx(2.0, rel=0.08)
    assert means[2] / means[1] == pytest.approx(2.0, rel=0.08)
    assert means[1] == pytest.approx(math.sqrt(2 / math.pi), rel=0.1)


def test_ransac_recovers_f_from_noisy_matches_with_outliers():
    p1, p2 = _scene(300)
    g = torch.Generator().manual_seed(2)
    p2 = p2 + 0.3 * torch.randn(p2.shape, generator=g, dtype=torch.float64)
    p2[:60] = torch.rand(60, 2, generator=g, dtype=torch.float64) * torch.tensor([320.0, 240.0])
    f, inliers = fundamental_from_correspondences(p1, p2, threshold_px=1.0)
    assert int(inliers[60:].sum()) > 220 and int(inliers[:60].sum()) < 10
    clean_p1, clean_p2 = _scene(300)
    # The recovered F explains the clean correspondences to sub-pixel accuracy.
    assert float(sampson_error(f, clean_p1, clean_p2).median()) < 0.5


def _texture(h, w, seed):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 8, w // 8, generator=g)
    img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    return img[0].permute(1, 2, 0).clamp(0, 1)


@pytest.mark.parametrize("method", ["sift", "orb"])
def test_feature_matches_recover_a_known_shift(method):
    big = _texture(160, 200, 0)
    a, b = big[10:130, 10:170], big[10:130, 17:177]  # b is a shifted 7 px left
    p1, p2 = match_features(a, b, method=method)
    assert p1.shape[0] >= 15
    shift = (p1 - p2).median(dim=0).values
    torch.testing.assert_close(
        shift, torch.tensor([7.0, 0.0], dtype=torch.float64), atol=0.6, rtol=0
    )


def test_bad_input():
    p1, p2 = _scene(20)
    with pytest.raises(ValueError, match="^pts2: shape"):
        sampson_error(torch.eye(3, dtype=torch.float64), p1, p2[:10])
    with pytest.raises(ValueError, match="^pts1: need at least 8"):
        fundamental_from_correspondences(p1[:5], p2[:5])
    with pytest.raises(ValueError, match="^w2c2: the two cameras share a centre"):
        fundamental_from_cameras(
            K, W2C1, K, make_pose(axis_rotation("y", 0.2), torch.zeros(3, dtype=torch.float64))
        )
    with pytest.raises(ValueError, match="^image"):
        match_features(torch.rand(4, 4), torch.rand(4, 4, 3))
