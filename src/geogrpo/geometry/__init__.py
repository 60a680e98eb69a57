"""Pure tensor geometry: projection, warping, homographies, noise warping, epipolar error, splats.

Cameras follow :mod:`geogrpo.camera` (OpenCV axes, world-to-camera extrinsics, pixel intrinsics).
Images are channels-last ``[..., H, W, C]`` floats; depth is metric z-depth ``[..., H, W]``.
"""
