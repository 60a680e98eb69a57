"""Latent Geometry Model on tiny random configs: stitching shapes, training signal, rewards."""

import pytest
import torch

from geogrpo.models.autoencoder import FrameAutoencoder
from geogrpo.perception.latent import LatentGeometryEstimator, LatentGeometryModel
from geogrpo.perception.tinygeo import TinyGeo
from geogrpo.pretrain.lgm import prediction_alignment_loss
from geogrpo.rewards.base import RewardBatch
from geogrpo.rewards.geometry import ReprojectionReward, SmoothnessReward


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    geo = TinyGeo(dim=32, heads=2, layers=2, size=32).eval()
    ae = FrameAutoencoder(frame_channels=4, widths=(8, 8, 8)).eval()
    return geo, ae


def test_connector_produces_the_rgb_models_stitch_point_tokens(parts):
    geo, ae = parts
    video = torch.rand(2, 9, 32, 32, 3)
    with torch.no_grad():
        latents = ae.encode(video.permute(0, 4, 1, 2, 3) * 2 - 1)
    lgm = LatentGeometryModel(geo, latents.shape[1], hidden=16)
    tokens = lgm.connector(latents)
    assert tokens.shape == geo.features(video).shape  # [B, 9, 1 + 2 x 2, 32]
    out = lgm(latents)
    assert out["log_depth"].shape == (2, 9, 32, 32)
    # stage 2 starts from the RGB model's own downstream weights
    assert torch.equal(lgm.geo.blocks[1].layer.linear1.weight, geo.blocks[1].layer.linear1.weight)


def test_feature_alignment_reduces_the_gap(parts):
    geo, ae = parts
    video = torch.rand(2, 5, 32, 32, 3)
    with torch.no_grad():
        latents = ae.encode(video.permute(0, 4, 1, 2, 3) * 2 - 1)
        target = geo.features(video)
    lgm = LatentGeometryModel(geo, latents.shape[1], hidden=16)
    opt = torch.optim.Adam(lgm.connector.parameters(), 3e-3)
    losses = []
    for _ in range(40):
        loss = (lgm.connector(latents) - target).square().mean()
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        same = prediction_alignment_loss(geo(video), geo(video))
    conf = torch.sigmoid(geo(video)["confidence_logit"])
    entropy = -(conf * conf.log() + (1 - conf) * (1 - conf).log()).mean()
    assert float(same) == pytest.approx(float(entropy), rel=1e-4)  # BCE floor, others 0


def test_latent_rewards_score_latents_and_mask_bad_ones(parts, tmp_path):
    geo, ae = parts
    video = torch.rand(2, 9, 32, 32, 3)
    with torch.no_grad():
        latents = ae.encode(video.permute(0, 4, 1, 2, 3) * 2 - 1)
    lgm = LatentGeometryModel(geo, latents.shape[1], hidden=16).eval()
    lgm.save_pretrained(tmp_path / "lgm")
    est = LatentGeometryEstimator(tmp_path / "lgm")
    latents[1, 0, 0, 0, 0] = float("nan")
    batch = RewardBatch(latents=latents)
    for reward in (
        SmoothnessReward(est, source="latent"),
        ReprojectionReward(est, source="latent"),
    ):
        out = reward(batch)
        assert bool(out.valid[0]) and not bool(out.valid[1])
        assert torch.isfinite(out.scores).all() and "non-finite" in out.reasons[1]
    assert (
        "needs batch.latents"
        in SmoothnessReward(est, source="latent")(RewardBatch(video=video)).reasons[0]
    )
    with pytest.raises(ValueError, match="latent estimator"):
        SmoothnessReward(object(), source="latent")
