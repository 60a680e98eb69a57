"""ReCamMaster camera conditioning: identity at init, camera-dependent after training."""

import pytest
import torch

from geogrpo.camera.presets import preset_trajectory
from geogrpo.models.camera import add_camera_conditioning, camera_inputs, relative_camera_features
from geogrpo.models.params import select_trainable
from geogrpo.models.wan import build_transformer
from tests.models.test_wan_params import TINY

# Source and target latents concatenated along frames: 2 x 2 latent frames of 8x8 -> 4x4 tokens.
X = torch.randn(1, 4, 4, 8, 8, generator=torch.Generator().manual_seed(0))
TEXT = torch.randn(1, 5, 12, generator=torch.Generator().manual_seed(1))
CAMS = preset_trajectory("arc_left", 2).float()[None]  # [B, F_lat, 4, 4]


def _forward(model):
    return model(
        hidden_states=X,
        timestep=torch.tensor([300.0]),
        encoder_hidden_states=TEXT,
        return_dict=False,
    )[0]


def test_zero_init_keeps_the_pretrained_model_exactly():
    torch.manual_seed(0)
    model = build_transformer(TINY)
    base = _forward(model).detach()
    add_camera_conditioning(model)
    with camera_inputs(model, CAMS, tokens_per_frame=16):
        torch.testing.assert_close(_forward(model), base)


def test_camera_modules_train_alone_and_make_outputs_depend_on_cameras():
    torch.manual_seed(0)
    model = add_camera_conditioning(build_transformer(TINY))
    names = select_trainable(model, "camera")
    assert names and all("camera" in n for n in names)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    with camera_inputs(model, CAMS, tokens_per_frame=16):
        _forward(model).square().mean().backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert changed and all("camera" in n for n in changed)
    assert any("camera_encoder.weight" in n for n in changed)
    other = preset_trajectory("pan_right", 2).float()[None]
    with camera_inputs(model, CAMS, tokens_per_frame=16):
        a = _forward(model)
    with camera_inputs(model, other, tokens_per_frame=16):
        b = _forward(model)
    assert not torch.allclose(a, b)


def test_relative_features_start_at_identity():
    feats = relative_camera_features(preset_trajectory("zoom_in", 3)[None])
    torch.testing.assert_close(feats[0, 0], torch.eye(4, dtype=torch.float64)[:3].flatten())
    assert feats[0, 2, 11] == pytest.approx(2.0)  # dolly 2 along z


def test_bad_input():
    model = add_camera_conditioning(build_transformer(TINY))
    with (
        camera_inputs(model, CAMS, tokens_per_frame=15),
        pytest.raises(ValueError, match="^cameras"),
    ):
        _forward(model)
    plain = build_transformer(TINY)
    with (
        pytest.raises(ValueError, match="^model: call add_camera"),
        camera_inputs(plain, CAMS, tokens_per_frame=16),
    ):
        pass
    with pytest.raises(ValueError, match="^model: camera conditioning is already"):
        add_camera_conditioning(model)
