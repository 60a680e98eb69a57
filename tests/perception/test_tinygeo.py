"""tinygeo on tiny random configs: shapes, conventions, training signal, persistence, masking."""

import pytest
import torch

from geogrpo.camera.se3 import make_pose, so3_exp
from geogrpo.perception.base import GeometryEstimator
from geogrpo.perception.tinygeo import TinyGeo, TinyGeoEstimator, geometry_loss, resolve_pretrained


def tiny(**kw):
    torch.manual_seed(0)
    return TinyGeo(dim=32, heads=2, layers=2, size=32, **kw)


def test_outputs_have_the_stated_shapes_and_frame_zero_is_the_world():
    out = tiny()(torch.rand(2, 5, 32, 32, 3))
    assert out["rotation"].shape == (2, 5, 3, 3) and out["translation"].shape == (2, 5, 3)
    assert out["log_depth"].shape == (2, 5, 32, 32) == out["confidence_logit"].shape
    assert torch.equal(out["rotation"][:, 0], torch.eye(3).expand(2, 3, 3))
    assert torch.equal(out["translation"][:, 0], torch.zeros(2, 3))
    r = out["rotation"]
    assert torch.allclose(r @ r.transpose(-1, -2), torch.eye(3).expand_as(r), atol=1e-5)


def test_stitch_point_splits_the_forward_exactly():
    model = tiny(stitch_layer=1)
    video = torch.rand(1, 3, 32, 32, 3)
    full = model(video)
    split = model.heads(model.features(video), video)
    for key in full:
        assert torch.equal(full[key], split[key])


@pytest.mark.parametrize("with_rgb", [True, False])
def test_refinement_a_clip_at_a_time_equals_one_call_over_the_batch(with_rgb):
    """refine_dense (per clip, channels-last, zero channels left out without RGB) against the
    plain refinement of [dense, rgb] (mid-grey, 0 after * 2 - 1, on the latent path)."""
    model = tiny()
    torch.nn.init.normal_(model.refine[0].bias)  # nonzero, so a dropped bias would show
    b, f = 3, 4
    dense = torch.randn(b * f, 2, 32, 32)
    video = torch.rand(b, f, 32, 32, 3)
    rgb = video.reshape(b * f, 32, 32, 3).permute(0, 3, 1, 2) * 2 - 1
    if not with_rgb:
        video, rgb = None, torch.zeros_like(rgb)
    expected = model.refine(torch.cat([dense, rgb], dim=1))
    got = model.refine_dense(dense, video, f)
    assert got.shape == expected.shape and got.is_contiguous()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fastpath", [True, False])
def test_global_attention_matches_the_fused_path_and_restores_the_flag(fastpath):
    block = tiny().blocks[1].eval()  # attends across frames
    assert block.scope == "global"
    tokens = torch.randn(2, 3, 5, 32)
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(fastpath)
    try:
        with torch.no_grad():
            got = block(tokens)
            fused = block.layer(tokens.reshape(2, 15, 32)).reshape(2, 3, 5, 32)
        assert torch.backends.mha.get_fastpath_enabled() is fastpath
    finally:
        torch.backends.mha.set_fastpath_enabled(before)
    torch.testing.assert_close(got, fused, rtol=1e-5, atol=1e-5)


def test_loss_is_zero_for_perfect_cameras_and_falls_when_training():
    model = tiny()
    video = torch.rand(2, 4, 32, 32, 3)
    rel = make_pose(
        so3_exp(0.1 * torch.randn(2, 4, 3, dtype=torch.float64)), torch.randn(2, 4, 3).double()
    )
    rel = rel @ torch.linalg.inv(rel[:, :1])
    depth = 1 + torch.rand(2, 4, 32, 32)
    static = torch.rand(2, 4, 32, 32) > 0.5
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    first = None
    for _ in range(30):
        loss = geometry_loss(model(video), rel, depth, static)["loss"]
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.5 * first


def test_save_load_round_trip_is_bit_exact(tmp_path):
    model = tiny().eval()
    model.save_pretrained(tmp_path / "m")
    again = TinyGeo.from_pretrained(tmp_path / "m")
    video = torch.rand(1, 3, 32, 32, 3)
    with torch.no_grad():
        a, b = model(video), again(video)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(FileNotFoundError, match="pretrain tinygeo"):
        resolve_pretrained(tmp_path / "missing")


def test_estimator_masks_nan_samples_and_checks_input():
    est = TinyGeoEstimator(tiny())
    assert isinstance(est, GeometryEstimator)
    video = torch.rand(2, 3, 32, 32, 3)
    video[1, 0, 0, 0, 0] = float("nan")
    out = est.estimate(video)
    assert out.valid.tolist() == [True, False] and "non-finite" in out.reasons[1]
    assert torch.isfinite(out.depth).all() and torch.isfinite(out.w2c).all()
    with pytest.raises(ValueError, match=r"\[B, F, H, W, 3\]"):
        est.estimate(torch.rand(2, 3, 3, 32, 32))
    with pytest.raises(ValueError, match="at least 2 frames"):
        est.estimate(torch.rand(2, 1, 32, 32, 3))
    with pytest.raises(ValueError, match="resize"):
        est.estimate(torch.rand(1, 2, 48, 48, 3))


def test_rotation_weight_scales_only_the_rotation_term():
    model = tiny().eval()
    video = torch.rand(1, 3, 32, 32, 3)
    rel = make_pose(so3_exp(0.2 * torch.randn(1, 3, 3, dtype=torch.float64)), torch.zeros(1, 3, 3))
    depth, static = 1 + torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32) > 0.5
    with torch.no_grad():
        out = model(video)
    one = geometry_loss(out, rel, depth, static)
    ten = geometry_loss(out, rel, depth, static, rotation_weight=10.0)
    torch.testing.assert_close(ten["loss"] - one["loss"], 9 * one["rotation"])


def test_an_estimate_becomes_the_source_geometry_reproj_v2v_takes():
    from geogrpo.world.datasets import scene_for
    from geogrpo.world.paths import make_path
    from geogrpo.world.render import render

    clip = render(scene_for("val", 3), make_path("walking", 5, seed=3), 96, 96)
    est = TinyGeoEstimator().estimate(clip.rgb[None])
    geo = est.as_source_geometry()
    assert geo["source_depth"].shape == (1, 5, 96, 96) and geo["source_w2c"].shape == (1, 5, 4, 4)
    torch.testing.assert_close(geo["intrinsics"][0], est.intrinsics[0, 0].float())
    surface = clip.depth > 0
    rel = (geo["source_depth"][0][surface] - clip.depth[surface]).abs() / clip.depth[surface]
    assert float(rel.median()) < 0.5  # metric depth, no alignment (val AbsRel 0.35)
    broken = clip.rgb[None].clone()
    broken[0, 2] = float("nan")
    with pytest.raises(ValueError, match="could not be estimated"):
        TinyGeoEstimator().estimate(broken).as_source_geometry()
