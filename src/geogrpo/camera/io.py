"""Camera trajectories in and out of the formats other projects use, converted at the edge.

Everything inside the package is world-to-camera ``w2c [F, 4, 4]`` with OpenCV camera axes and
pixel intrinsics (see :mod:`geogrpo.camera`). Each public dataset or baseline stores cameras its
own way (Unreal axes in centimetres, normalised intrinsics, quaternions, spherical offsets), and a
silent axis or handedness slip there corrupts every reward computed downstream. So each format
gets one reader and one writer here, each stating the source convention it assumes, and the
tests round-trip them and pin the conventions with hand-computed cases.

Supported: ReCamMaster/MultiCamVideo ``camera_extrinsics.json``, RealEstate10K camera text files,
COLMAP text models (``cameras.txt`` + ``images.txt``), TrajectoryCrafter's ``(theta, phi, r, x,
y)`` target poses, and this package's own ``.json`` / ``.npz`` files. Every writer is atomic.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import NamedTuple

import numpy as np
import roma
import torch
from torch import Tensor

from geogrpo.camera.se3 import (
    axis_rotation,
    c2w_to_w2c,
    check_intrinsics,
    check_pose,
    make_intrinsics,
    make_pose,
    w2c_to_c2w,
)
from geogrpo.utils.checks import check_int_range, check_positive
from geogrpo.utils.io import atomic_path, atomic_write_json, atomic_write_text

PathLike = str | os.PathLike[str]
CONVENTION = "opencv_w2c"
FORMAT_VERSION = 1
TRAJECTORY_SUFFIXES = (".json", ".npz")


@dataclass(frozen=True, eq=False)
class Trajectory:
    """A camera path in the package convention.

    ``w2c [F, 4, 4]`` world-to-camera, OpenCV axes; ``intrinsics`` pixel ``[3, 3]`` (shared) or
    ``[F, 3, 3]``, or ``None`` when the source has none; ``image_size`` ``(H, W)`` in pixels or
    ``None``; ``unit`` the length unit of the translations (``"m"``, or ``"unknown"`` for
    scale-free reconstructions).
    """

    w2c: Tensor
    intrinsics: Tensor | None = None
    image_size: tuple[int, int] | None = None
    unit: str = "unknown"

    def __post_init__(self) -> None:
        if isinstance(self.w2c, Tensor) and not self.w2c.is_floating_point():
            raise ValueError(f"w2c: expected a floating-point tensor, got {self.w2c.dtype}")
        check_pose("w2c", self.w2c)
        if self.w2c.ndim != 3 or self.w2c.shape[0] < 1:
            raise ValueError(f"w2c: expected a trajectory [F, 4, 4], got {tuple(self.w2c.shape)}")
        if self.intrinsics is not None:
            check_intrinsics("intrinsics", self.intrinsics)
            if self.intrinsics.shape not in ((3, 3), (self.num_frames, 3, 3)):
                raise ValueError(
                    f"intrinsics: expected shape [3, 3] or [{self.num_frames}, 3, 3] (one per "
                    f"frame of w2c), got {tuple(self.intrinsics.shape)}"
                )
        if self.image_size is not None:
            object.__setattr__(self, "image_size", _image_size("image_size", self.image_size))
        if not isinstance(self.unit, str) or not self.unit.strip():
            raise ValueError(f"unit: expected a non-empty string such as 'm', got {self.unit!r}")

    @property
    def num_frames(self) -> int:
        """Number of frames ``F``."""
        return self.w2c.shape[0]


# --------------------------------------------------------------------------- shared helpers


def _image_size(name: str, value: object) -> tuple[int, int]:
    """``(H, W)`` as two positive ints."""
    ok = isinstance(value, Sequence) and len(value) == 2
    ok = ok and all(isinstance(v, Integral) and not isinstance(v, bool) and v > 0 for v in value)
    if not ok:
        raise ValueError(f"{name}: expected (H, W) as two positive integers, got {value!r}")
    return int(value[0]), int(value[1])


def _read_text(name: str, path: PathLike) -> str:
    """File contents, or FileNotFoundError naming the argument."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{name}: no file at {str(p)!r}")
    return p.read_text(encoding="utf-8")


def _num(value: float) -> str:
    """Shortest text that parses back to the same float64 (exact round trips)."""
    return repr(float(value))


def _frame_intrinsics(traj: Trajectory) -> Tensor:
    """Intrinsics expanded to ``[F, 3, 3]``; the trajectory must have them."""
    if traj.intrinsics is None:
        raise ValueError("traj: this format stores intrinsics; expected traj.intrinsics, got None")
    return traj.intrinsics.expand(traj.num_frames, 3, 3)


def _pinhole(name: str, k: Tensor) -> list[tuple[float, float, float, float]]:
    """``(fx, fy, cx, cy)`` per frame of ``k [F, 3, 3]``; formats without skew reject skew."""
    if bool((k[:, 0, 1].abs() > 1e-9 * k[:, 0, 0]).any()):
        raise ValueError(f"{name}: skewed intrinsics (K[0, 1] != 0) cannot be stored; expected 0")
    return [(r[0][0], r[1][1], r[0][2], r[1][2]) for r in k.tolist()]


def _snap_rotations(pose: Tensor) -> Tensor:
    """``[..., 4, 4]`` with rotation blocks projected onto SO(3): text files keep few digits, and
    exact rotations make ``R^T`` the exact inverse downstream."""
    return make_pose(roma.special_procrustes(pose[..., :3, :3]), pose[..., :3, 3])


def _require_image_size(traj: Trajectory) -> tuple[int, int]:
    if traj.image_size is None:
        raise ValueError("traj: this format needs the image size; expected traj.image_size (H, W)")
    return traj.image_size


# --------------------------------------------------------------------------- ReCamMaster

# Unreal stores a camera-to-world transform whose rotation columns are the camera's forward
# (x), right (y) and up (z) axes in a left-handed world (x forward, y right, z up).
# OpenCV camera axes from Unreal ones: x_cv = right, y_cv = -up, z_cv = forward.
_UE_TO_CV_CAMERA = torch.tensor(
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]], dtype=torch.float64
)
# Flip the world's y axis to make it right-handed: our world is x forward, y left, z up.
_UE_TO_RH_WORLD = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64))
_CM_PER_M = 100.0
_FRAME_KEY = re.compile(r"frame(\d+)")


def _parse_ue_matrix(name: str, value: object) -> Tensor:
    """``[4, 4]`` from ``"[a b c d] [e f g h] [i j k l] [m n o p]"`` or a nested 4x4 list."""
    try:
        if isinstance(value, str):
            rows = [r.split() for r in re.findall(r"\[([^\[\]]*)\]", value)]
            matrix = torch.tensor([[float(v) for v in r] for r in rows], dtype=torch.float64)
        else:
            matrix = torch.tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"{name}: expected a 4x4 matrix of numbers, got {value!r} ({err})"
        ) from None
    if matrix.shape != (4, 4):
        raise ValueError(
            f"{name}: expected 4 rows of 4 numbers like '[1 0 0 0] [0 1 0 0] [0 0 1 0] "
            f"[x y z 1]', got {value!r}"
        )
    return matrix


def read_recammaster_json(
    path_or_dict: PathLike | Mapping[str, object], camera: str = "cam01"
) -> Trajectory:
    """One camera of a ReCamMaster / MultiCamVideo ``camera_extrinsics.json`` (metres, OpenCV).

    Source format (ReCamMaster, github.com/KwaiVGI/ReCamMaster: ``inference_recammaster.py``,
    ``vis_cam.py`` and ``example_test_data/cameras/camera_extrinsics.json``):
    ``{"frame0": {"cam01": M, ...}, ...}`` where ``M`` is Unreal Engine's camera-to-world
    ``FMatrix`` as text ``"[r0] [r1] [r2] [r3]"``, in the row-vector layout: rows 0-2 are the
    camera's forward, right and up axes and row 3 its position, in the left-handed Unreal world
    (x forward, y right, z up), in centimetres.

    ReCamMaster transposes ``M``, permutes the columns to ``[right, up, forward]``, negates the
    second and divides the position by 100. That gives OpenCV camera axes but keeps the
    left-handed world, so rotations come out with determinant -1. Here the world y axis is also
    flipped: our world is x = Unreal forward (x), y = Unreal left (-y), z = up (z), right-handed,
    metres. ``R_c2w = diag(1, -1, 1) @ M^T[:3, :3] @ P`` with
    ``P = [[0, 0, 1], [1, 0, 0], [0, -1, 0]]`` (OpenCV x, y, z = Unreal right, -up, forward).
    A world reflection cancels in relative poses: ``inv(c2w_0) @ c2w_f`` here equals the relative
    camera-to-world poses ReCamMaster feeds its model (the inverses of ``relative_to_first``).
    Frames are ordered by the number in their key and must be ``frame0 .. frame{F-1}``;
    rotations (stored with ~6 digits) are projected onto SO(3) after the rigidity check. The file
    has no intrinsics (the dataset folder name gives the focal length in mm, sensor 23.76 mm,
    1280x1280 video): ``intrinsics`` is ``None``.
    """
    name = "path_or_dict"
    if isinstance(path_or_dict, Mapping):
        data = path_or_dict
    else:
        text = _read_text(name, path_or_dict)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{name}: {str(path_or_dict)!r} is not valid JSON ({err})") from None
        if not isinstance(data, Mapping):
            raise ValueError(f"{name}: expected a JSON object of frames, got {type(data).__name__}")
    frames: dict[int, object] = {}
    for key, value in data.items():
        match = _FRAME_KEY.fullmatch(str(key))
        if match is None or not isinstance(value, Mapping):
            raise ValueError(
                f"{name}: expected keys 'frame0', 'frame1', ... mapping to cameras, got {key!r}"
            )
        frames[int(match.group(1))] = value
    if not frames:
        raise ValueError(f"{name}: expected at least one 'frame0' entry, got none")
    missing = sorted(set(range(len(frames))) - set(frames))
    if missing:
        raise ValueError(
            f"{name}: expected keys 'frame0' .. 'frame{len(frames) - 1}' with none missing; "
            f"'frame{missing[0]}' is missing"
        )
    c2w_ue = []
    for index in range(len(frames)):
        cameras = frames[index]
        if camera not in cameras:
            raise ValueError(f"camera: {camera!r} is not in frame{index}; it has {sorted(cameras)}")
        label = f"{name}: frame{index}/{camera}"
        c2w_ue.append(check_pose(label, _parse_ue_matrix(label, cameras[camera]).T))
    c2w_ue_t = torch.stack(c2w_ue)  # [F, 4, 4]
    rotation = _UE_TO_RH_WORLD @ c2w_ue_t[:, :3, :3] @ _UE_TO_CV_CAMERA
    centres = (c2w_ue_t[:, :3, 3] / _CM_PER_M) @ _UE_TO_RH_WORLD.T
    return Trajectory(c2w_to_w2c(_snap_rotations(make_pose(rotation, centres))), unit="m")


def write_recammaster_json(traj: Trajectory, path: PathLike, camera: str = "cam01") -> Path:
    """Write ``traj`` as camera ``camera`` of a ReCamMaster ``camera_extrinsics.json``.

    Inverse of :func:`read_recammaster_json` (our world x forward, y left, z up -> Unreal;
    metres -> centimetres). A trajectory of unknown unit is written as if in metres. The file
    holds only this camera; it is replaced atomically.
    """
    if traj.unit not in ("m", "unknown"):
        raise ValueError(
            f"traj: expected unit 'm' (or 'unknown', taken as metres), got {traj.unit!r}"
        )
    if not isinstance(camera, str) or not camera:
        raise ValueError(f"camera: expected a camera key such as 'cam01', got {camera!r}")
    c2w = w2c_to_c2w(traj.w2c.to(torch.float64))
    rotation = _UE_TO_RH_WORLD @ c2w[:, :3, :3] @ _UE_TO_CV_CAMERA.T  # Unreal [F, 3, 3]
    centres = c2w[:, :3, 3] @ _UE_TO_RH_WORLD.T * _CM_PER_M  # [F, 3] cm
    data = {}
    for f in range(traj.num_frames):
        rows = [[*rotation[f, :, i].tolist(), 0.0] for i in range(3)]  # columns become rows
        rows.append([*centres[f].tolist(), 1.0])
        text = " ".join("[" + " ".join(_num(v) for v in row) + "]" for row in rows)
        data[f"frame{f}"] = {camera: text}
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


# --------------------------------------------------------------------------- RealEstate10K


class RealEstate10KClip(NamedTuple):
    """A parsed RealEstate10K camera file: the trajectory, its timestamps ``[F]`` (int64,
    microseconds) and the video URL of the first line."""

    trajectory: Trajectory
    timestamps: Tensor
    url: str


_RE10K_FIELDS = 19  # timestamp fx fy cx cy k1 k2 + 12 numbers of a 3x4 w2c


def read_realestate10k(path_or_text: PathLike, image_size: tuple[int, int]) -> RealEstate10KClip:
    """A RealEstate10K camera file -> ``(trajectory, timestamps, url)``.

    Source format: line 1 is the YouTube URL; every further non-blank line is
    ``timestamp fx fy cx cy k1 k2 r00 r01 r02 t0 r10 r11 r12 t1 r20 r21 r22 t2`` with the
    timestamp an integer in microseconds, intrinsics normalised by the image size (``fx, cx``
    times W, ``fy, cy`` times H give pixels), ``k1 k2`` radial distortion (zero throughout the
    dataset; ignored), and a row-major 3x4 world-to-camera matrix with OpenCV camera axes (its
    rotation is projected onto SO(3) after the rigidity check).
    ``image_size`` ``(H, W)`` of the frames you decoded turns the intrinsics into pixels. Scale
    is that of the dataset's SLAM reconstruction: ``unit`` is ``"unknown"``. A ``str`` without
    a newline is taken as a path, anything else with a newline as the file's text.
    """
    name = "path_or_text"
    size = _image_size("image_size", image_size)
    is_text = isinstance(path_or_text, str) and "\n" in path_or_text
    text = path_or_text if is_text else _read_text(name, path_or_text)
    lines = text.splitlines()
    url = lines[0].strip() if lines else ""
    if len(url.split()) == _RE10K_FIELDS:
        raise ValueError(f"{name}: line 1: expected the video URL, got a camera line")
    timestamps, ks, poses = [], [], []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != _RE10K_FIELDS:
            raise ValueError(
                f"{name}: line {number}: expected {_RE10K_FIELDS} numbers (timestamp fx fy cx cy "
                f"k1 k2 and a 3x4 world-to-camera matrix), got {len(fields)}"
            )
        try:
            timestamps.append(int(fields[0]))
            values = [float(v) for v in fields[1:]]
        except ValueError as err:
            raise ValueError(f"{name}: line {number}: expected numbers ({err})") from None
        if not all(math.isfinite(v) for v in values) or values[0] <= 0 or values[1] <= 0:
            raise ValueError(f"{name}: line {number}: expected finite values and fx, fy > 0")
        ks.append(values[:4])
        pose = torch.eye(4, dtype=torch.float64)
        pose[:3, :] = torch.tensor(values[6:], dtype=torch.float64).reshape(3, 4)
        poses.append(check_pose(f"{name}: line {number}", pose))
    if not poses:
        raise ValueError(f"{name}: expected at least one camera line after the URL, got none")
    h, w = size
    k = torch.tensor(ks, dtype=torch.float64)  # [F, 4] normalised fx fy cx cy
    intrinsics = make_intrinsics(k[:, 0] * w, k[:, 1] * h, k[:, 2] * w, k[:, 3] * h)
    traj = Trajectory(_snap_rotations(torch.stack(poses)), intrinsics, size, "unknown")
    return RealEstate10KClip(traj, torch.tensor(timestamps, dtype=torch.int64), url)


def write_realestate10k(
    traj: Trajectory,
    path: PathLike,
    timestamps: Sequence[int] | Tensor | None = None,
    url: str = "",
) -> Path:
    """Write ``traj`` as a RealEstate10K camera file (the format of :func:`read_realestate10k`).

    Needs ``traj.intrinsics`` and ``traj.image_size`` (to normalise them). ``timestamps``
    default to the frame indices 0..F-1; distortion is written as ``0 0``.
    """
    h, w = _require_image_size(traj)
    params = _pinhole("traj", _frame_intrinsics(traj))
    if timestamps is None:
        stamps = list(range(traj.num_frames))
    else:
        stamps = timestamps.tolist() if isinstance(timestamps, Tensor) else list(timestamps)
        integral = all(isinstance(t, Integral) and not isinstance(t, bool) for t in stamps)
        if len(stamps) != traj.num_frames or not integral:
            raise ValueError(
                f"timestamps: expected {traj.num_frames} integers (one per frame), got {stamps!r}"
            )
    if "\n" in url or "\r" in url:
        raise ValueError(f"url: expected a single line, got {url!r}")
    lines = [url]
    for f, (fx, fy, cx, cy) in enumerate(params):
        numbers = [fx / w, fy / h, cx / w, cy / h, 0.0, 0.0, *traj.w2c[f, :3, :].flatten().tolist()]
        lines.append(" ".join([str(int(stamps[f])), *(_num(v) for v in numbers)]))
    return atomic_write_text(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- COLMAP

# Model -> (number of params, indices of fx, fy, cx, cy in them). Distortion terms are dropped.
_COLMAP_MODELS = {
    "SIMPLE_PINHOLE": (3, (0, 0, 1, 2)),
    "PINHOLE": (4, (0, 1, 2, 3)),
    "SIMPLE_RADIAL": (4, (0, 0, 1, 2)),
    "RADIAL": (5, (0, 0, 1, 2)),
    "OPENCV": (8, (0, 1, 2, 3)),
    "FULL_OPENCV": (12, (0, 1, 2, 3)),
}


def _colmap_paths(
    name: str, folder_or_paths: PathLike | tuple[PathLike, PathLike]
) -> tuple[Path, Path]:
    if isinstance(folder_or_paths, tuple):
        if len(folder_or_paths) != 2:
            raise ValueError(
                f"{name}: expected a folder or (cameras.txt, images.txt), got {folder_or_paths!r}"
            )
        return Path(folder_or_paths[0]), Path(folder_or_paths[1])
    folder = Path(folder_or_paths)
    cameras, images = folder / "cameras.txt", folder / "images.txt"
    if not cameras.is_file() and (folder / "cameras.bin").is_file():
        raise FileNotFoundError(
            f"{name}: {str(folder)!r} holds a binary COLMAP model; expected the text one (convert "
            "with `colmap model_converter --output_type TXT`)"
        )
    return cameras, images


def _content_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` for every line that is not a ``#`` comment."""
    return [
        (n, line) for n, line in enumerate(text.splitlines(), start=1) if not line.startswith("#")
    ]


def _read_colmap_cameras(
    name: str, text: str
) -> dict[int, tuple[tuple[float, ...], tuple[int, int]]]:
    """camera id -> ((fx, fy, cx, cy), (H, W))."""
    cameras = {}
    for number, line in _content_lines(text):
        fields = line.split()
        if not fields:
            continue
        where = f"{name}: cameras.txt line {number}"
        if len(fields) < 4:
            raise ValueError(
                f"{where}: expected CAMERA_ID MODEL WIDTH HEIGHT PARAMS[], got {line!r}"
            )
        model = fields[1]
        if model not in _COLMAP_MODELS:
            raise ValueError(
                f"{where}: unknown camera model {model!r}; supported: {', '.join(_COLMAP_MODELS)}"
            )
        count, index = _COLMAP_MODELS[model]
        try:
            camera_id, width, height = int(fields[0]), int(fields[2]), int(fields[3])
            params = [float(v) for v in fields[4:]]
        except ValueError as err:
            raise ValueError(f"{where}: expected integers and numbers ({err})") from None
        if len(params) != count:
            raise ValueError(
                f"{where}: model {model} expects {count} parameters, got {len(params)}"
            )
        fx, fy, cx, cy = (params[i] for i in index)
        if not (fx > 0 and fy > 0 and width > 0 and height > 0) or not math.isfinite(cx + cy):
            raise ValueError(f"{where}: expected positive focal lengths and image size")
        if camera_id in cameras:
            raise ValueError(f"{where}: camera id {camera_id} appears twice")
        cameras[camera_id] = ((fx, fy, cx, cy), (height, width))
    return cameras


def read_colmap(folder_or_paths: PathLike | tuple[PathLike, PathLike]) -> Trajectory:
    """The registered images of a COLMAP text model, ordered by image NAME.

    Source format (COLMAP "Output format" docs): ``cameras.txt`` lines
    ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]``; ``images.txt`` two lines per image,
    ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` then the (possibly empty) 2D points line;
    ``#`` lines are comments. ``(QW, QX, QY, QZ)`` is the Hamilton unit quaternion of the
    world-to-camera rotation and ``T`` its translation; camera axes are OpenCV. COLMAP puts
    pixel centres at +0.5 like this package, so the principal point is taken as is.

    Choices: frames are sorted by NAME (image ids follow registration order, not time; names such
    as ``frame_00012.jpg`` sort in time order); SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL,
    OPENCV and FULL_OPENCV are read as their pinhole part, ignoring distortion; all images must
    share one image size; scale is arbitrary, so ``unit`` is ``"unknown"``. ``folder_or_paths`` is
    the model folder or a ``(cameras.txt, images.txt)`` pair.
    """
    name = "folder_or_paths"
    cameras_path, images_path = _colmap_paths(name, folder_or_paths)
    cameras = _read_colmap_cameras(name, _read_text(name, cameras_path))
    lines = _content_lines(_read_text(name, images_path))
    records: dict[str, tuple[list[float], int]] = {}
    i = 0
    while i < len(lines):
        number, line = lines[i]
        if not line.strip() and all(not rest.strip() for _, rest in lines[i:]):
            break
        where = f"{name}: images.txt line {number}"
        fields = line.split(maxsplit=9)
        if len(fields) != 10:
            raise ValueError(
                f"{where}: expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME, got {line!r}"
            )
        try:
            values = [float(v) for v in fields[1:8]]
            camera_id = int(fields[8])
        except ValueError as err:
            raise ValueError(f"{where}: expected numbers ({err})") from None
        if camera_id not in cameras:
            raise ValueError(f"{where}: camera id {camera_id} is not in cameras.txt")
        image_name = fields[9].strip()
        if image_name in records:
            raise ValueError(f"{where}: image name {image_name!r} appears twice")
        norm = math.sqrt(sum(v * v for v in values[:4]))
        if not all(math.isfinite(v) for v in values) or abs(norm - 1.0) > 1e-3:
            raise ValueError(
                f"{where}: expected a unit quaternion and finite translation, got |q| = {norm:.4g}"
            )
        records[image_name] = (values, camera_id)
        i += 2  # skip the 2D points line
    if not records:
        raise ValueError(f"{name}: images.txt lists no images; expected at least one")
    order = sorted(records)
    qt = torch.tensor([records[n][0] for n in order], dtype=torch.float64)  # [F, 7]
    quat_xyzw = roma.quat_wxyz_to_xyzw(qt[:, :4] / qt[:, :4].norm(dim=-1, keepdim=True))
    w2c = make_pose(roma.unitquat_to_rotmat(quat_xyzw), qt[:, 4:])
    used = [cameras[records[n][1]] for n in order]
    sizes = {size for _, size in used}
    if len(sizes) != 1:
        raise ValueError(
            f"{name}: images use cameras of different sizes {sorted(sizes)}; expected one"
        )
    fx, fy, cx, cy = torch.tensor([params for params, _ in used], dtype=torch.float64).unbind(-1)
    return Trajectory(w2c, make_intrinsics(fx, fy, cx, cy), sizes.pop(), "unknown")


def write_colmap(traj: Trajectory, folder: PathLike, names: Sequence[str] | None = None) -> Path:
    """Write ``traj`` as a COLMAP text model (``cameras.txt``, ``images.txt``, empty
    ``points3D.txt``) in ``folder``; returns the folder.

    Needs intrinsics and image size. Each distinct intrinsics matrix becomes one PINHOLE camera.
    ``names`` default to ``frame_000000.png``...; they must sort in frame order (so that
    :func:`read_colmap`, which sorts by name, gives the frames back in order) and hold no line
    breaks or surrounding blanks. Quaternions are written with ``QW >= 0``.
    """
    h, w = _require_image_size(traj)
    params = _pinhole("traj", _frame_intrinsics(traj))
    f_count = traj.num_frames
    if names is None:
        names = [f"frame_{f:06d}.png" for f in range(f_count)]
    names = list(names)
    clean = all(
        isinstance(n, str) and n and n == n.strip() and len(n.splitlines()) == 1 for n in names
    )
    if len(names) != f_count or not clean:
        raise ValueError(
            f"names: expected {f_count} non-empty single-line names without surrounding blanks"
        )
    if any(a >= b for a, b in itertools.pairwise(names)):
        raise ValueError(
            "names: expected names in strictly increasing sort order (read_colmap sorts by name)"
        )
    camera_ids: dict[tuple[float, float, float, float], int] = {}
    for p in params:
        camera_ids.setdefault(p, len(camera_ids) + 1)
    camera_lines = [
        "# Camera list with one line of data per camera:",
        "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
    ]
    for p, camera_id in camera_ids.items():
        camera_lines.append(
            " ".join([str(camera_id), "PINHOLE", str(w), str(h), *(_num(v) for v in p)])
        )
    quat = roma.quat_xyzw_to_wxyz(roma.rotmat_to_unitquat(traj.w2c[:, :3, :3].to(torch.float64)))
    quat = torch.where(quat[:, :1] < 0, -quat, quat)  # [F, 4] with QW >= 0
    image_lines = [
        "# Image list with two lines of data per image:",
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "#   POINTS2D[] as (X, Y, POINT3D_ID)",
    ]
    for f in range(f_count):
        numbers = [*quat[f].tolist(), *traj.w2c[f, :3, 3].tolist()]
        fields = [str(f + 1), *(_num(v) for v in numbers), str(camera_ids[params[f]]), names[f]]
        image_lines += [" ".join(fields), ""]
    out = Path(folder)
    atomic_write_text(out / "cameras.txt", "\n".join(camera_lines) + "\n")
    atomic_write_text(out / "images.txt", "\n".join(image_lines) + "\n")
    atomic_write_text(out / "points3D.txt", "# 3D point list (empty: cameras only)\n")
    return out


# --------------------------------------------------------------------------- TrajectoryCrafter


def trajectorycrafter_poses(
    theta_deg: float,
    phi_deg: float,
    radius: float,
    x: float,
    y: float,
    num_frames: int,
    center_depth: float,
) -> Tensor:
    """World-to-camera ``[F, 4, 4]`` of TrajectoryCrafter's ``--target_pose theta phi r x y``.

    Derived from TrajectoryCrafter (github.com/TrajectoryCrafter/TrajectoryCrafter) ``demo.py``
    (``get_poses``) and ``models/utils.py``
    (``generate_traj_specified``, ``sphere2pose``): frame ``f`` uses ``s = f / (F - 1)`` times
    each target value (linear in the parameters, as their ``np.linspace``); their pose is
    ``Ry(phi) Rx(theta) [diag(-1, 1, -1) | (-x, y, -r)]`` plus ``center_depth`` on the z
    translation, used by their warper as world-to-camera with OpenCV pixels. Re-expressed in the
    first camera's frame (frame 0 = identity, world = camera 0, OpenCV axes) that is
    ``R = Ry(phi) Rx(theta)``, ``t = R (-x, y, -(r + d)) + (0, 0, d)``, with
    ``d = center_depth`` (their depth of the centre pixel times ``radius_scale``, capped at 5)
    and ``r = radius * d`` (``radius`` is their relative ``d_r``).

    Meaning: the camera stays at distance ``d`` from, and looks straight at, the point
    ``(x, -y, d + r)`` of camera 0; with ``x = y = r = 0`` that is the scene centre
    ``(0, 0, d)`` and the motion is a pure orbit. ``phi > 0`` orbits to the camera's right
    (it ends up at +x, turned left), ``theta > 0`` orbits upward (ends at -y, looking down);
    ``r > 0`` moves closer (without rotation the distance becomes ``d (1 - radius)``);
    ``x > 0`` moves right and ``y > 0`` moves up, in camera-0 axes, in the unit of ``d``.
    """
    for label, value in (
        ("theta_deg", theta_deg),
        ("phi_deg", phi_deg),
        ("radius", radius),
        ("x", x),
        ("y", y),
    ):
        try:
            finite = math.isfinite(float(value))
        except (TypeError, ValueError):
            finite = False
        if not finite:
            raise ValueError(f"{label}: expected a finite number, got {value!r}")
    check_int_range("num_frames", num_frames, 1)
    d = check_positive("center_depth", center_depth)
    s = torch.linspace(0.0, 1.0, num_frames, dtype=torch.float64)  # [F]
    rotation = axis_rotation("y", s * math.radians(phi_deg)) @ axis_rotation(
        "x", s * math.radians(theta_deg)
    )  # [F, 3, 3]
    offset = torch.stack([-s * x, s * y, -(s * radius * d + d)], dim=-1)  # [F, 3]
    translation = (rotation @ offset[..., None]).squeeze(-1)
    translation[:, 2] += d
    return make_pose(rotation, translation)


# --------------------------------------------------------------------------- own format


def _suffix(path: PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in TRAJECTORY_SUFFIXES:
        raise ValueError(
            f"path: unsupported extension {suffix or '(none)'!r} of {str(path)!r}; "
            f"expected one of {', '.join(TRAJECTORY_SUFFIXES)}"
        )
    return suffix


def save_trajectory(traj: Trajectory, path: PathLike) -> Path:
    """Save ``traj`` as ``.json`` (readable) or ``.npz`` (numpy arrays), atomically.

    Both carry ``format_version``, ``convention`` (``"opencv_w2c"``), ``unit``, ``w2c``
    ``[F, 4, 4]`` and, when present, ``intrinsics`` and ``image_size`` ``(H, W)``.
    """
    suffix = _suffix(path)
    fields: dict[str, object] = {
        "format_version": FORMAT_VERSION,
        "convention": CONVENTION,
        "unit": traj.unit,
        "w2c": traj.w2c.detach().cpu().to(torch.float64).numpy(),
    }
    if traj.intrinsics is not None:
        fields["intrinsics"] = traj.intrinsics.detach().cpu().to(torch.float64).numpy()
    if traj.image_size is not None:
        fields["image_size"] = np.asarray(traj.image_size, dtype=np.int64)
    if suffix == ".json":
        plain = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in fields.items()}
        return atomic_write_json(path, plain)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{k: np.asarray(v) for k, v in fields.items()})
    return Path(path)


def load_trajectory(path: PathLike) -> Trajectory:
    """Load a trajectory written by :func:`save_trajectory` (float64 tensors)."""
    suffix = _suffix(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"path: no file at {str(path)!r}")
    try:
        if suffix == ".json":
            fields = json.loads(Path(path).read_text(encoding="utf-8"))
        else:
            with np.load(path, allow_pickle=False) as npz:
                fields = {k: npz[k].tolist() if npz[k].ndim == 0 else npz[k] for k in npz.files}
    except (json.JSONDecodeError, zipfile.BadZipFile, ValueError, OSError) as err:
        raise ValueError(
            f"path: {str(path)!r} is not a readable {suffix} trajectory ({err})"
        ) from None
    if not isinstance(fields, dict) or fields.get("convention") != CONVENTION:
        raise ValueError(f"path: expected 'convention': {CONVENTION!r} in {str(path)!r}")
    if fields.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"path: unsupported format_version {fields.get('format_version')!r}; "
            f"expected {FORMAT_VERSION}"
        )

    def tensor(key: str) -> Tensor | None:
        value = fields.get(key)
        return None if value is None else torch.as_tensor(np.asarray(value, dtype=np.float64))

    image_size = fields.get("image_size")
    try:
        w2c = tensor("w2c")
        if w2c is None:
            raise ValueError("w2c: missing")
        return Trajectory(
            w2c,
            tensor("intrinsics"),
            None if image_size is None else tuple(np.asarray(image_size).tolist()),
            str(fields.get("unit", "")),
        )
    except (ValueError, TypeError) as err:
        raise ValueError(f"path: {str(path)!r} holds an invalid trajectory: {err}") from None


# --------------------------------------------------------------------------- user target paths

# Names become parts of file names (one evaluation folder per path) and must not read as a preset.
_TARGET_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


def _check_target_name(where: str, name: object) -> str:
    """A path name usable in a file name that is not one of the ten presets."""
    from geogrpo.camera.presets import PRESETS

    if not isinstance(name, str) or not _TARGET_NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(
            f"{where}: path name {name!r} is not usable in a file name; use letters, digits, "
            "'_', '-' and '.'"
        )
    if name in PRESETS:
        raise ValueError(
            f"{where}: path name {name!r} is a preset's name (presets are evaluated anyway); "
            "rename the path"
        )
    return name


def _target_frames(where: str, value: object) -> Tensor:
    """``[F, 4, 4]`` float64 from a list of F 4x4 matrices of numbers, checked frame by frame."""
    if isinstance(value, Tensor):
        frames: list[object] = list(value.detach().cpu().to(torch.float64))
    elif isinstance(value, list):
        frames = value
    else:
        raise ValueError(f"{where}: expected a list of 4x4 matrices, got {type(value).__name__}")
    poses = []
    for f, frame in enumerate(frames):
        label = f"{where}: frame {f}"
        try:
            pose = torch.as_tensor(np.asarray(frame, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{label}: expected a 4x4 matrix of numbers ({err})") from None
        if pose.shape != (4, 4):
            raise ValueError(f"{label}: expected a 4x4 matrix, got shape {list(pose.shape)}")
        if not bool(torch.isfinite(pose).all()):
            raise ValueError(f"{label}: expected finite numbers, got NaN or infinity")
        poses.append(check_pose(label, pose))
    if len(poses) < 2:
        raise ValueError(f"{where}: expected at least 2 frames, got {len(poses)}")
    return torch.stack(poses)


def _target_path(file: str, name: str, value: object, num_frames: int | None) -> Tensor:
    """One path of a target-paths file: our trajectory object or a plain list of matrices."""
    where = f"{file}: path {name!r}"
    if isinstance(value, Mapping):
        if value.get("convention") != CONVENTION or value.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{where}: a trajectory object needs 'format_version': {FORMAT_VERSION} and "
                f"'convention': {CONVENTION!r} (what save_trajectory writes), or give a plain "
                "list of 4x4 world-to-camera matrices"
            )
        if "w2c" not in value:
            raise ValueError(f"{where}: the trajectory object has no 'w2c'")
        value = value["w2c"]
    w2c = _target_frames(where, value)
    if num_frames is not None and w2c.shape[0] != num_frames:
        raise ValueError(
            f"{file}: the policy makes {num_frames} frames; path {name!r} has {w2c.shape[0]}"
        )
    return w2c


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise ValueError(f"key {twice[0]!r} appears twice")
    return dict(pairs)


def load_target_paths(path: PathLike, num_frames: int | None = None) -> dict[str, Tensor]:
    """Named target camera paths for video-to-video evaluation: ``{name: w2c [F, 4, 4]}``.

    The file is a JSON object mapping a name to a path, in file order. A path is either this
    package's trajectory object (what ``save_trajectory(traj, "x.json")`` writes; only ``w2c``
    is read) or a plain list of ``F`` 4x4 world-to-camera matrices. Both are OpenCV axes and
    **relative to the source camera**, as the presets are: the target camera at frame ``f`` is
    ``relative[f] @ source_w2c[f]`` (frame 0 at the identity starts at the source camera).
    Names must be usable in a file name (letters, digits, ``_ - .``) and not a preset's name;
    every path needs at least 2 frames, rigid finite poses, and ``num_frames`` frames when given.
    Errors name the file, the path and the frame. Returns float64 tensors.
    """
    text = _read_text("path", path)
    where = f"path: {str(path)!r}"
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where} is not valid JSON ({err})") from None
    except ValueError as err:  # a duplicate key
        raise ValueError(f"{where}: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{where}: expected a JSON object mapping names to paths, got {type(data).__name__}"
        )
    if not data:
        raise ValueError(f"{where}: the object names no path; expected at least one")
    if "convention" in data and "w2c" in data:
        raise ValueError(
            f"{where} holds one trajectory; a target-paths file maps names to paths, e.g. "
            '{"my_path": <that trajectory object>}'
        )
    if num_frames is not None:
        check_int_range("num_frames", num_frames, 2)
    return {
        _check_target_name(where, name): _target_path(where, name, value, num_frames)
        for name, value in data.items()
    }


def save_target_paths(paths: Mapping[str, Tensor], path: PathLike) -> Path:
    """Write ``{name: relative w2c [F, 4, 4]}`` for :func:`load_target_paths`, atomically: each
    path as our trajectory object, one matrix per line, numbers that read back exactly."""
    if not isinstance(paths, Mapping) or not paths:
        raise ValueError(
            f"paths: expected a non-empty mapping of names to [F, 4, 4], got {paths!r}"
        )
    entries = []
    for name, w2c in paths.items():
        _check_target_name("paths", name)
        if not isinstance(w2c, Tensor):
            raise ValueError(f"paths: path {name!r}: expected a tensor [F, 4, 4], got {w2c!r}")
        frames = _target_frames(f"paths: path {name!r}", w2c)
        rows = ",\n".join(
            "      [" + ", ".join("[" + ", ".join(_num(v) for v in row) + "]" for row in m) + "]"
            for m in frames.tolist()
        )
        head = {"format_version": FORMAT_VERSION, "convention": CONVENTION, "unit": "unknown"}
        fields = json.dumps(head)[1:-1]
        entries.append(f'  {json.dumps(name)}: {{{fields}, "w2c": [\n{rows}\n    ]}}')
    return atomic_write_text(path, "{\n" + ",\n".join(entries) + "\n}\n")
