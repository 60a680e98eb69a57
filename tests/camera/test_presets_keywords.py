"""Presets end where their definitions say; the keyword parser builds the same paths."""

import math

import pytest
import torch

from geogrpo.camera.keywords import (
    camera_keywords_to_trajectory,
    camera_text_from_prompt,
    parse_camera_motion,
)
from geogrpo.camera.presets import PRESETS, preset_trajectory
from geogrpo.camera.se3 import camera_centers, rotation_angle, w2c_to_c2w
from geogrpo.camera.trajectory import trajectory_speeds

EYE = torch.eye(3, dtype=torch.float64)


def _final(name, frames=9, scale=1.0):
    w2c = preset_trajectory(name, frames, scale)
    return w2c_to_c2w(w2c)[-1], camera_centers(w2c)[-1]


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_starts_at_identity(name):
    w2c = preset_trajectory(name, 5)
    torch.testing.assert_close(w2c[0], torch.eye(4, dtype=torch.float64))


@pytest.mark.parametrize(("name", "deg", "x_sign"), [("pan_right", 20, 1), ("pan_left", 20, -1)])
def test_pan_final_yaw(name, deg, x_sign):
    c2w, center = _final(name)
    assert float(rotation_angle(c2w[:3, :3], EYE)) == pytest.approx(math.radians(deg))
    assert float(c2w[0, 2]) == pytest.approx(
        x_sign * math.sin(math.radians(deg))
    )  # looks right/left
    torch.testing.assert_close(center, torch.zeros(3, dtype=torch.float64))


@pytest.mark.parametrize(("name", "y_sign"), [("tilt_up", -1), ("tilt_down", 1)])
def test_tilt_final_pitch(name, y_sign):
    c2w, _ = _final(name)
    assert float(rotation_angle(c2w[:3, :3], EYE)) == pytest.approx(math.radians(10))
    assert float(c2w[1, 2]) == pytest.approx(y_sign * math.sin(math.radians(10)))  # y is down


@pytest.mark.parametrize(("name", "z"), [("zoom_in", 2.0), ("zoom_out", -2.0)])
def test_zoom_is_a_dolly_along_the_optical_axis(name, z):
    c2w, center = _final(name, scale=1.5)
    torch.testing.assert_close(center, torch.tensor([0.0, 0.0, 1.5 * z], dtype=torch.float64))
    torch.testing.assert_close(c2w[:3, :3], EYE)


@pytest.mark.parametrize(("name", "y"), [("translate_up", -1.0), ("translate_down", 1.0)])
def test_translate_keeps_the_point_ahead_centred(name, y):
    w2c = preset_trajectory(name, 7)
    c2w = w2c_to_c2w(w2c)
    torch.testing.assert_close(
        camera_centers(w2c)[-1], torch.tensor([0.0, y, 0.0], dtype=torch.float64)
    )
    point = torch.tensor([0.0, 0.0, 4.0, 1.0], dtype=torch.float64)
    cam = (w2c @ point)[:, :3]  # the point in every camera frame
    torch.testing.assert_close(
        cam[:, :2], torch.zeros(7, 2, dtype=torch.float64), atol=1e-12, rtol=0
    )
    assert float(rotation_angle(c2w[-1, :3, :3], EYE)) == pytest.approx(math.atan2(1, 4))


@pytest.mark.parametrize(("name", "x_sign"), [("arc_left", -1), ("arc_right", 1)])
def test_arc_orbits_30_degrees_about_the_point_ahead(name, x_sign):
    w2c = preset_trajectory(name, 7, scale=2.0)
    pivot = torch.tensor([0.0, 0.0, 8.0], dtype=torch.float64)
    centers = camera_centers(w2c)
    torch.testing.assert_close(
        (centers - pivot).norm(dim=-1), torch.full((7,), 8.0, dtype=torch.float64)
    )
    assert float(centers[-1, 0]) == pytest.approx(x_sign * 8 * math.sin(math.radians(30)))
    cam = (w2c @ torch.cat([pivot, torch.ones(1, dtype=torch.float64)]))[:, :3]
    torch.testing.assert_close(
        cam[:, :2], torch.zeros(7, 2, dtype=torch.float64), atol=1e-12, rtol=0
    )


@pytest.mark.parametrize("name", ["pan_right", "zoom_in", "arc_left"])
def test_presets_are_linear_in_frame_index(name):
    trans, rot = trajectory_speeds(preset_trajectory(name, 11))
    for speed in (trans, rot):
        torch.testing.assert_close(speed, speed.mean().expand_as(speed), atol=1e-9, rtol=0)


def test_unknown_preset_lists_the_names():
    with pytest.raises(ValueError, match="^name: unknown preset 'spin'; choose one of pan_right"):
        preset_trajectory("spin", 5)


@pytest.mark.parametrize(
    ("text", "preset"),
    [
        ("The camera pans right.", "pan_right"),
        ("camera tilts down", "tilt_down"),
        ("the camera dollies forward", "zoom_in"),
        ("pull back", "zoom_out"),
        ("the camera orbits left", "arc_left"),
        ("arc right", "arc_right"),
    ],
)
def test_keywords_reproduce_the_presets(text, preset):
    torch.testing.assert_close(
        camera_keywords_to_trajectory(text, 9), preset_trajectory(preset, 9), atol=1e-12, rtol=0
    )


def test_speed_words_scale_the_motion():
    slow = camera_keywords_to_trajectory("the camera slowly pans left", 5)
    fast = camera_keywords_to_trajectory("the camera pans left quickly", 5)
    eye = EYE
    assert float(rotation_angle(w2c_to_c2w(slow)[-1, :3, :3], eye)) == pytest.approx(
        math.radians(10)
    )
    assert float(rotation_angle(w2c_to_c2w(fast)[-1, :3, :3], eye)) == pytest.approx(
        math.radians(40)
    )


def test_while_composes_and_then_sequences():
    segments = parse_camera_motion("the camera pans left while dollying forward, then tilts up")
    assert [len(s) for s in segments] == [2, 1]
    w2c = camera_keywords_to_trajectory(
        "the camera pans left while dollying forward, then tilts up", 9
    )
    c2w = w2c_to_c2w(w2c)
    # First half: yaw left 20 deg while moving 2 units along the turning optical axis.
    assert float(rotation_angle(c2w[4, :3, :3], EYE)) == pytest.approx(math.radians(20))
    assert float(camera_centers(w2c)[4].norm()) == pytest.approx(
        2 * math.sin(math.radians(10)) / math.radians(10), rel=1e-9
    )
    # Second half: no translation, only the tilt.
    torch.testing.assert_close(camera_centers(w2c)[8], camera_centers(w2c)[4])
    tilt = c2w[4, :3, :3].T @ c2w[8, :3, :3]
    assert float(rotation_angle(tilt, EYE)) == pytest.approx(math.radians(10))


def test_static_camera():
    w2c = camera_keywords_to_trajectory("the camera stays still", 4)
    torch.testing.assert_close(w2c, torch.eye(4, dtype=torch.float64).expand(4, 4, 4))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("the camera wobbles left", "unknown word 'wobbles'.*verbs: "),
        ("pan up", "'pan' takes one of the directions left, right"),
        ("", "non-empty"),
        ("pans left tilts up", "two verbs"),
    ],
)
def test_bad_text_gives_a_clear_error(text, message):
    with pytest.raises(ValueError, match=f"^text: .*{message}"):
        camera_keywords_to_trajectory(text, 5)


def test_camera_sentences_are_found_in_a_full_prompt():
    prompt = "A red car on a wet street at night. The camera pans left. Rain falls."
    assert camera_text_from_prompt(prompt) == "The camera pans left"
    with pytest.raises(ValueError, match="^prompt"):
        camera_text_from_prompt("A red car on a street.")
