"""Trajectory I/O: every format round-trips, hand-computed cases pin each source convention."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geogrpo.camera.io import (
    Trajectory,
    load_trajectory,
    read_colmap,
    read_realestate10k,
    read_recammaster_json,
    save_trajectory,
    trajectorycrafter_poses,
    write_colmap,
    write_realestate10k,
    write_recammaster_json,
)
from geogrpo.camera.se3 import (
    axis_rotation,
    camera_centers,
    invert_pose,
    make_intrinsics,
    make_pose,
    w2c_to_c2w,
)
from tests.camera.strategies import trajectories

# tmp_path is shared by the examples of one test; every example overwrites the same files.
IO = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
F64 = torch.float64


def close(actual, expected, atol=1e-9):
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)


@st.composite
def calibrated(draw):
    """A random trajectory with intrinsics (shared ``[3, 3]`` or per frame) and an image size."""
    w2c = draw(trajectories(min_frames=1))
    h, w = draw(st.integers(8, 2000)), draw(st.integers(8, 2000))
    n = 1 if draw(st.booleans()) else w2c.shape[0]
    values = [
        [
            draw(st.floats(10.0, 5000.0)),
            draw(st.floats(10.0, 5000.0)),
            draw(st.floats(0.0, float(w))),
            draw(st.floats(0.0, float(h))),
        ]
        for _ in range(n)
    ]
    k = make_intrinsics(*torch.tensor(values, dtype=F64).unbind(-1))
    return Trajectory(w2c, k[0] if n == 1 else k, (h, w), "unknown")


# --------------------------------------------------------------------------- Trajectory


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"w2c": torch.eye(4, dtype=F64)}, "w2c"),
        ({"w2c": 2 * torch.eye(4, dtype=F64)[None]}, "w2c"),
        ({"w2c": torch.eye(4, dtype=torch.int64)[None]}, "w2c"),
        ({"intrinsics": torch.eye(3, dtype=F64).expand(3, 3, 3)}, "intrinsics"),
        ({"intrinsics": -torch.eye(3, dtype=F64)}, "intrinsics"),
        ({"image_size": (480,)}, "image_size"),
        ({"image_size": (480, 0)}, "image_size"),
        ({"unit": ""}, "unit"),
    ],
)
def test_trajectory_rejects_bad_fields(kwargs, name):
    fields = {"w2c": torch.eye(4, dtype=F64).expand(2, 4, 4)} | kwargs
    with pytest.raises(ValueError, match=f"^{name}"):
        Trajectory(**fields)


# --------------------------------------------------------------------------- ReCamMaster


def _ue(*rows):
    return " ".join("[" + " ".join(str(v) for v in row) + "]" for row in rows)


# cam01 ("Pan Right") of ReCamMaster's example_test_data/cameras/camera_extrinsics.json.
PAN_RIGHT = {
    "frame0": {"cam01": "[1 0 0 0] [-0 1 0 0] [0 -0 1 0] [3390 1380 240 1] "},
    "frame1": {
        "cam01": "[0.999991 0.00433621 0 0] [-0.00433621 0.999991 0 0] [0 -0 1 0] "
        "[3390 1380 240 1] "
    },
    "frame2": {
        "cam01": "[0.999962 0.00867233 0 0] [-0.00867233 0.999962 0 0] [0 -0 1 0] "
        "[3390 1380 240 1] "
    },
}


@IO
@given(trajectories())
def test_recammaster_round_trip(tmp_path, w2c):
    path = tmp_path / "camera_extrinsics.json"
    write_recammaster_json(Trajectory(w2c, unit="m"), path, camera="cam07")
    back = read_recammaster_json(path, camera="cam07")
    assert back.unit == "m" and back.intrinsics is None
    close(back.w2c, w2c)


def test_recammaster_camera_looking_along_unreal_x_maps_to_opencv_axes():
    data = {"frame0": {"cam01": _ue([1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [100, 200, 300, 1])}}
    c2w = w2c_to_c2w(read_recammaster_json(data).w2c)[0]
    # Our world is Unreal's with y flipped (x forward, y left, z up), in metres.
    close(c2w[:3, 2], torch.tensor([1.0, 0.0, 0.0], dtype=F64))  # optical axis = Unreal +x
    close(c2w[:3, 1], torch.tensor([0.0, 0.0, -1.0], dtype=F64))  # image down = world down
    close(c2w[:3, 0], torch.tensor([0.0, -1.0, 0.0], dtype=F64))  # image right = Unreal +y
    close(c2w[:3, 3], torch.tensor([1.0, -2.0, 3.0], dtype=F64))  # cm -> m
    assert torch.linalg.det(c2w[:3, :3]) == pytest.approx(1.0)


def test_recammaster_relative_poses_match_their_own_conversion():
    ours = w2c_to_c2w(read_recammaster_json(PAN_RIGHT).w2c)
    theirs = []
    for frame in PAN_RIGHT.values():
        rows = [r.replace("[", "").split() for r in frame["cam01"].strip().split("] [")]
        m = np.array([[float(v.strip("]")) for v in r] for r in rows]).T
        m = m[:, [1, 2, 0, 3]]  # their column permutation, y negation and cm -> m
        m[:3, 1] *= -1.0
        m[:3, 3] /= 100.0
        theirs.append(torch.tensor(m))
    assert torch.linalg.det(theirs[0][:3, :3]) == pytest.approx(-1.0)  # their left-handed world
    for f in range(3):  # we project the file's 6-digit rotations onto SO(3): ~1e-6 apart
        close(invert_pose(ours[0]) @ ours[f], torch.linalg.inv(theirs[0]) @ theirs[f], 1e-4)
    # "Pan Right": the last camera's optical axis, seen from the first, turns to image-right.
    assert float((invert_pose(ours[0]) @ ours[2])[0, 2]) > 1e-3


@pytest.mark.parametrize(
    "data",
    [
        {"frame0": {"cam01": "[1 0 0 0] [0 1 0 0] [0 0 1 0]"}},  # 3 rows
        {"frame0": {"cam01": "[1 0 0 0] [0 1 0 0] [0 0 1 0] [a b c 1]"}},
        {"frame0": {"cam01": _ue([-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1])}},
        {"frame0": {"cam01": _ue([2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1])}},
        {"frame0": PAN_RIGHT["frame0"], "frame2": PAN_RIGHT["frame2"]},  # frame1 missing
        {"frames": PAN_RIGHT},
        {},
    ],
)
def test_recammaster_rejects_malformed_or_non_rigid_input(data):
    with pytest.raises(ValueError, match="^path_or_dict"):
        read_recammaster_json(data)


def test_recammaster_bad_file_camera_and_unit(tmp_path):
    with pytest.raises(FileNotFoundError, match="^path_or_dict"):
        read_recammaster_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="^path_or_dict"):
        read_recammaster_json(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="^camera"):
        read_recammaster_json(PAN_RIGHT, camera="cam02")
    with pytest.raises(ValueError, match="^traj"):
        write_recammaster_json(Trajectory(torch.eye(4, dtype=F64)[None], unit="cm"), tmp_path / "x")


# --------------------------------------------------------------------------- RealEstate10K


@IO
@given(calibrated(), st.data())
def test_realestate10k_round_trip(tmp_path, traj, data):
    stamps = data.draw(
        st.lists(st.integers(0, 10**12), min_size=traj.num_frames, max_size=traj.num_frames)
    )
    path = tmp_path / "clip.txt"
    write_realestate10k(traj, path, timestamps=stamps, url="https://youtu.be/x")
    clip = read_realestate10k(path, traj.image_size)
    assert clip.url == "https://youtu.be/x" and clip.timestamps.tolist() == stamps
    close(clip.trajectory.w2c, traj.w2c)
    close(clip.trajectory.intrinsics, traj.intrinsics.expand(traj.num_frames, 3, 3))
    assert clip.trajectory.image_size == traj.image_size


RE10K_TEXT = (
    "https://www.youtube.com/watch?v=abc\n"
    "33366667 0.5 0.75 0.5 0.5 0 0 0 -1 0 0.1 1 0 0 0.2 0 0 1 0.3\n"
    "\n"
    "66733333 0.5 0.75 0.25 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 -1.5\n"
)


def test_realestate10k_hand_written_lines_parse_to_known_matrices(tmp_path):
    clip = read_realestate10k(RE10K_TEXT, image_size=(360, 640))
    traj = clip.trajectory
    assert clip.url == "https://www.youtube.com/watch?v=abc"
    assert clip.timestamps.tolist() == [33366667, 66733333]
    rz90 = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=F64)
    close(traj.w2c[0], make_pose(rz90, torch.tensor([0.1, 0.2, 0.3], dtype=F64)))
    close(
        traj.w2c[1], make_pose(torch.eye(3, dtype=F64), torch.tensor([0.0, 0.0, -1.5], dtype=F64))
    )
    close(traj.intrinsics[0], make_intrinsics(320.0, 270.0, 320.0, 180.0))
    close(traj.intrinsics[1], make_intrinsics(320.0, 270.0, 160.0, 180.0))
    assert traj.image_size == (360, 640) and traj.unit == "unknown"
    (tmp_path / "clip.txt").write_text(RE10K_TEXT)
    close(read_realestate10k(tmp_path / "clip.txt", (360, 640)).trajectory.w2c, traj.w2c)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (RE10K_TEXT + "1 0.5 0.5 0.5 0.5 0 0 1 0 0 0 0 1 0 0\n", "line 5"),  # 15 numbers
        (RE10K_TEXT.replace("66733333", "later"), "line 4"),
        (RE10K_TEXT.replace("0 -1 0 0.1", "0 -2 0 0.1"), "line 2"),  # not a rotation
        (RE10K_TEXT.replace("0.5 0.75 0.25", "-0.5 0.75 0.25"), "line 4"),  # fx < 0
        (RE10K_TEXT.split("\n", 1)[1], "line 1"),  # URL line missing
        ("https://www.youtube.com/watch?v=abc\n\n", ""),  # no cameras
    ],
)
def test_realestate10k_rejects_bad_lines_with_their_number(text, where):
    with pytest.raises(ValueError, match=f"^path_or_text: {where}"):
        read_realestate10k(text, (360, 640))


def test_realestate10k_bad_file_size_and_writer_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="^path_or_text"):
        read_realestate10k(tmp_path / "missing.txt", (360, 640))
    with pytest.raises(ValueError, match="^image_size"):
        read_realestate10k(RE10K_TEXT, (360.0, 640))
    bare = Trajectory(torch.eye(4, dtype=F64)[None])
    with pytest.raises(ValueError, match="^traj"):
        write_realestate10k(bare, tmp_path / "x.txt")
    traj = read_realestate10k(RE10K_TEXT, (360, 640)).trajectory
    with pytest.raises(ValueError, match="^timestamps"):
        write_realestate10k(traj, tmp_path / "x.txt", timestamps=[0])
    with pytest.raises(ValueError, match="^url"):
        write_realestate10k(traj, tmp_path / "x.txt", url="a\nb")


# --------------------------------------------------------------------------- COLMAP


@IO
@given(calibrated())
def test_colmap_round_trip(tmp_path, traj):
    write_colmap(traj, tmp_path / "sparse")
    back = read_colmap(tmp_path / "sparse")
    close(back.w2c, traj.w2c)
    close(back.intrinsics, traj.intrinsics.expand(traj.num_frames, 3, 3))
    assert back.image_size == traj.image_size and (tmp_path / "sparse" / "points3D.txt").exists()


COLMAP_CAMERAS = """# Camera list with one line of data per camera:
#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]
1 SIMPLE_PINHOLE 640 480 500 320 240
2 PINHOLE 640 480 500 510 321 241
3 SIMPLE_RADIAL 640 480 600 322 242 0.01
4 RADIAL 640 480 700 323 243 0.01 0.02
5 OPENCV 640 480 800 810 324 244 0.01 0.02 0.001 0.002
"""
# Ids in registration order, names out of order; one 2D-points line is filled, the rest empty.
COLMAP_IMAGES = """# Image list with two lines of data per image:
5 1 0 0 0 0.5 -0.25 2 5 e.png

3 0.7071067811865476 0 0 0.7071067811865476 0 0 0 3 c.png
10.0 20.0 -1 11.0 21.0 4
1 1 0 0 0 0 0 0 1 a.png

4 1 0 0 0 0 0 0 4 d.png

2 1 0 0 0 0 0 0 2 b.png

"""


def _colmap(tmp_path, cameras=COLMAP_CAMERAS, images=COLMAP_IMAGES):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "cameras.txt").write_text(cameras)
    (tmp_path / "images.txt").write_text(images)
    return tmp_path


def test_colmap_hand_written_model_orders_by_name_and_reads_pinhole_parts(tmp_path):
    traj = read_colmap(_colmap(tmp_path))
    assert traj.image_size == (480, 640) and traj.unit == "unknown"
    expected_k = [
        (500, 500, 320, 240),
        (500, 510, 321, 241),
        (600, 600, 322, 242),
        (700, 700, 323, 243),
        (800, 810, 324, 244),
    ]
    close(traj.intrinsics, make_intrinsics(*torch.tensor(expected_k, dtype=F64).unbind(-1)))
    # a.png: identity quaternion -> identity rotation; e.png keeps its translation.
    close(traj.w2c[0], torch.eye(4, dtype=F64))
    close(
        traj.w2c[4], make_pose(torch.eye(3, dtype=F64), torch.tensor([0.5, -0.25, 2.0], dtype=F64))
    )
    # c.png: (w, x, y, z) = (cos 45, 0, 0, sin 45) is +90 degrees about z (w first, Hamilton).
    close(traj.w2c[2, :3, :3], axis_rotation("z", math.pi / 2), 1e-12)


def test_colmap_folder_or_file_pair_give_the_same_model(tmp_path):
    folder = _colmap(tmp_path)
    pair = read_colmap((folder / "cameras.txt", folder / "images.txt"))
    close(pair.w2c, read_colmap(folder).w2c)


@pytest.mark.parametrize(
    ("cameras", "images", "where"),
    [
        (
            COLMAP_CAMERAS + "6 OPENCV_FISHEYE 640 480 1 1 1 1 0 0 0 0\n",
            COLMAP_IMAGES,
            "cameras.txt line 8: unknown camera model",
        ),
        (COLMAP_CAMERAS + "6 PINHOLE 640 480 500 320 240\n", COLMAP_IMAGES, "cameras.txt line 8"),
        (COLMAP_CAMERAS + "1 PINHOLE 640 480 1 1 1 1\n", COLMAP_IMAGES, "cameras.txt line 8"),
        (
            COLMAP_CAMERAS + "6 PINHOLE 320 240 1 1 1 1\n",
            COLMAP_IMAGES + "6 1 0 0 0 0 0 0 6 f\n",
            "images use cameras of different sizes",
        ),
        (COLMAP_CAMERAS, COLMAP_IMAGES.replace("5 1 0 0 0", "5 2 0 0 0"), "images.txt line 2"),
        (
            COLMAP_CAMERAS,
            COLMAP_IMAGES.replace("0 0 0 1 a.png", "0 0 0 9 a.png"),
            "images.txt line 6: camera id 9",
        ),
        (COLMAP_CAMERAS, COLMAP_IMAGES.replace("b.png", "a.png"), "images.txt line 10"),
        (COLMAP_CAMERAS, COLMAP_IMAGES.replace("0.5 -0.25 2 5", "0.5 2 5"), "images.txt line 2"),
        (COLMAP_CAMERAS, "# nothing registered\n", "images.txt lists no images"),
    ],
)
def test_colmap_rejects_bad_models_with_file_and_line(tmp_path, cameras, images, where):
    with pytest.raises(ValueError, match=f"^folder_or_paths: {where}"):
        read_colmap(_colmap(tmp_path, cameras, images))


def test_colmap_missing_or_binary_model_and_writer_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="^folder_or_paths"):
        read_colmap(tmp_path)
    (tmp_path / "cameras.bin").write_bytes(b"\0")
    with pytest.raises(FileNotFoundError, match="^folder_or_paths: .*binary"):
        read_colmap(tmp_path)
    traj = read_colmap(_colmap(tmp_path / "model"))
    with pytest.raises(ValueError, match="^names"):
        write_colmap(traj, tmp_path / "out", names=["e", "d", "c", "b", "a"])
    with pytest.raises(ValueError, match="^names"):
        write_colmap(traj, tmp_path / "out", names=["a", "b"])
    with pytest.raises(ValueError, match="^traj"):
        write_colmap(Trajectory(traj.w2c), tmp_path / "out")


# --------------------------------------------------------------------------- TrajectoryCrafter


def _their_relative_poses(theta, phi, r, x, y, frames, depth):
    """TrajectoryCrafter's own composition (their world, their explicit Rx, Ry), re-expressed
    relative to frame 0."""
    poses = []
    for s in np.linspace(0.0, 1.0, frames):
        p = np.diag([-1.0, 1.0, -1.0, 1.0])  # their c2w_init, used as world-to-camera
        p[2, 3] -= s * r * depth
        p[1, 3] += s * y
        p[0, 3] -= s * x
        ct, st_ = math.cos(math.radians(s * theta)), math.sin(math.radians(s * theta))
        cp, sp = math.cos(math.radians(s * phi)), math.sin(math.radians(s * phi))
        rx = np.array([[1, 0, 0, 0], [0, ct, -st_, 0], [0, st_, ct, 0], [0, 0, 0, 1]])
        ry = np.array([[cp, 0, sp, 0], [0, 1, 0, 0], [-sp, 0, cp, 0], [0, 0, 0, 1]])
        p = ry @ rx @ p
        p[2, 3] += depth
        poses.append(p)
    return torch.tensor(np.stack(poses) @ np.linalg.inv(poses[0]))


angles = st.floats(-80.0, 80.0)


@settings(max_examples=25, deadline=None)
@given(
    angles,
    angles,
    st.floats(-0.9, 0.9),
    st.floats(-1.0, 1.0),
    st.floats(-1.0, 1.0),
    st.integers(1, 12),
    st.floats(0.3, 5.0),
)
def test_trajectorycrafter_matches_their_composition(theta, phi, r, x, y, frames, depth):
    w2c = trajectorycrafter_poses(theta, phi, r, x, y, frames, depth)
    assert w2c.shape == (frames, 4, 4)
    close(w2c[0], torch.eye(4, dtype=F64))
    close(w2c, _their_relative_poses(theta, phi, r, x, y, frames, depth))


@settings(max_examples=25, deadline=None)
@given(
    angles,
    angles,
    st.floats(-0.9, 0.9),
    st.floats(-1.0, 1.0),
    st.floats(-1.0, 1.0),
    st.floats(0.3, 5.0),
)
def test_trajectorycrafter_keeps_its_look_at_point_at_the_image_centre(theta, phi, r, x, y, depth):
    k = make_intrinsics(500.0, 500.0, 512.0, 288.0)  # their fixed intrinsics for 1024x576
    s = torch.linspace(0.0, 1.0, 9, dtype=F64)  # [F]
    for rr, xx, yy in ((0.0, 0.0, 0.0), (r, x, y)):
        w2c = trajectorycrafter_poses(theta, phi, rr, xx, yy, 9, depth)
        # The centre point (0, 0, depth) (x = y = r = 0), or where the offsets move it by each
        # frame, (s x, -s y, depth (1 + s r)), stays centred at distance depth.
        target = torch.stack([s * xx, -s * yy, depth * (1 + s * rr), torch.ones_like(s)], -1)
        cam = (w2c @ target[..., None])[:, :3, 0]  # [F, 3]
        pixels = (cam @ k.T)[:, :2] / cam[:, 2:]
        close(pixels, torch.tensor([512.0, 288.0], dtype=F64).expand(9, 2), 1e-7)
        close(cam[:, 2], torch.full((9,), depth, dtype=F64), 1e-9)  # orbit radius kept


def test_trajectorycrafter_directions():
    right = camera_centers(trajectorycrafter_poses(0.0, 30.0, 0.0, 0.0, 0.0, 5, 2.0))[-1]
    assert right[0] > 0.5 and abs(float(right[1])) < 1e-12  # phi > 0: orbit to the right
    up = camera_centers(trajectorycrafter_poses(20.0, 0.0, 0.0, 0.0, 0.0, 5, 2.0))[-1]
    assert up[1] < -0.3 and abs(float(up[0])) < 1e-12  # theta > 0: orbit upward (-y)
    dolly = trajectorycrafter_poses(0.0, 0.0, 0.5, 0.2, 0.1, 3, 2.0)
    close(camera_centers(dolly)[-1], torch.tensor([0.2, -0.1, 1.0], dtype=F64))
    close(dolly[-1, :3, :3], torch.eye(3, dtype=F64))


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((0.0, 10.0, 0.0, 0.0, 0.0, 5, 0.0), "center_depth"),
        ((0.0, 10.0, 0.0, 0.0, 0.0, 0, 1.0), "num_frames"),
        ((math.nan, 10.0, 0.0, 0.0, 0.0, 5, 1.0), "theta_deg"),
        ((0.0, 10.0, 0.0, math.inf, 0.0, 5, 1.0), "x"),
    ],
)
def test_trajectorycrafter_rejects_bad_arguments(args, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        trajectorycrafter_poses(*args)


# --------------------------------------------------------------------------- own format


@IO
@given(calibrated(), st.sampled_from([".json", ".npz"]), st.integers(0, 2))
def test_save_load_round_trip(tmp_path, traj, suffix, variant):
    if variant == 0:  # no intrinsics, no size
        traj = Trajectory(traj.w2c, unit="m")
    elif variant == 1:  # per-frame intrinsics
        traj = Trajectory(
            traj.w2c, traj.intrinsics.expand(traj.num_frames, 3, 3).clone(), traj.image_size, "m"
        )
    path = tmp_path / suffix[1:] / f"traj{suffix}"
    save_trajectory(traj, path)
    back = load_trajectory(path)
    close(back.w2c, traj.w2c, 0.0)
    assert back.unit == traj.unit and back.image_size == traj.image_size
    if traj.intrinsics is None:
        assert back.intrinsics is None
    else:
        close(back.intrinsics, traj.intrinsics, 0.0)
    assert back.w2c.dtype == F64
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind


def test_json_file_names_its_convention_and_version(tmp_path):
    save_trajectory(Trajectory(torch.eye(4, dtype=F64)[None]), tmp_path / "t.json")
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["convention"] == "opencv_w2c" and data["format_version"] == 1


def test_save_load_reject_unknown_extension_and_bad_files(tmp_path):
    traj = Trajectory(torch.eye(4, dtype=F64)[None])
    with pytest.raises(ValueError, match=r"^path: .*\.json, \.npz"):
        save_trajectory(traj, tmp_path / "t.txt")
    with pytest.raises(ValueError, match="^path"):
        load_trajectory(tmp_path / "t.pt")
    with pytest.raises(FileNotFoundError, match="^path"):
        load_trajectory(tmp_path / "missing.json")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="^path"):
        load_trajectory(tmp_path / "broken.npz")
    save_trajectory(traj, tmp_path / "t.json")
    data = json.loads((tmp_path / "t.json").read_text())
    for key, value in (("convention", "opengl_c2w"), ("format_version", 99), ("w2c", [[1.0]])):
        (tmp_path / "bad.json").write_text(json.dumps(data | {key: value}))
        with pytest.raises(ValueError, match="^path"):
            load_trajectory(tmp_path / "bad.json")
