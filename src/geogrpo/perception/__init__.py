"""Models that look at videos: geometry estimators behind one protocol, quality scorers.

Conventions are those of :mod:`geogrpo.perception.base` (videos ``[B, F, H, W, 3]`` in [0, 1],
OpenCV world-to-camera cameras with the first camera as the world frame).
"""

from geogrpo.perception.base import GeometryEstimate, GeometryEstimator, check_video

__all__ = ["GeometryEstimate", "GeometryEstimator", "check_video"]
