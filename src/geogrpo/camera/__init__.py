"""Cameras and trajectories as tensors. The conventions of the whole package are stated here.

* **Camera axes: OpenCV.** x right, y down, z forward (the camera looks along +z).
* **Extrinsics: world-to-camera** 4x4 matrices ``w2c`` with ``x_cam = R x_world + t``; a
  trajectory is ``[..., F, 4, 4]``. Camera centres are ``-R^T t``.
* **Intrinsics: pinhole** ``[..., 3, 3]`` in pixels, ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``;
  pixel ``(u, v)`` has its centre at ``(u + 0.5, v + 0.5)`` in continuous coordinates when
  ``cx = W / 2``.
* **Units.** Angles in radians inside functions (degrees only in names that say ``_deg``);
  lengths in the trajectory's own unit (metres for metric data), never silently rescaled.
* **Conversions happen at the edges** (``geogrpo.camera.io``): camera-to-world, OpenGL/Blender
  axes, Unreal centimetres (ReCamMaster), RealEstate10K, COLMAP, TrajectoryCrafter spheres.
"""

from geogrpo.camera.se3 import (
    axis_rotation,
    c2w_to_w2c,
    camera_centers,
    check_intrinsics,
    check_pose,
    intrinsics_from_fov,
    invert_pose,
    make_intrinsics,
    make_pose,
    opengl_c2w_to_opencv_c2w,
    relative_to_first,
    rotation_angle,
    scale_intrinsics,
    skew,
    so3_exp,
    so3_log,
    w2c_to_c2w,
)

__all__ = [
    "axis_rotation",
    "c2w_to_w2c",
    "camera_centers",
    "check_intrinsics",
    "check_pose",
    "intrinsics_from_fov",
    "invert_pose",
    "make_intrinsics",
    "make_pose",
    "opengl_c2w_to_opencv_c2w",
    "relative_to_first",
    "rotation_angle",
    "scale_intrinsics",
    "skew",
    "so3_exp",
    "so3_log",
    "w2c_to_c2w",
]
