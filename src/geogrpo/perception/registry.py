"""Geometry estimators by name, for recipes and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from geogrpo.perception.base import GeometryEstimator


def _tinygeo(**kwargs: Any) -> GeometryEstimator:
    from geogrpo.perception.tinygeo import TinyGeoEstimator

    return TinyGeoEstimator(**kwargs)


def _classical(**kwargs: Any) -> GeometryEstimator:
    from geogrpo.perception.classical import ClassicalEstimator

    return ClassicalEstimator(**kwargs)


def _da3(**kwargs: Any) -> GeometryEstimator:
    from geogrpo.perception.adapters import DepthAnything3Estimator

    return DepthAnything3Estimator(**kwargs)


def _vggt(**kwargs: Any) -> GeometryEstimator:
    from geogrpo.perception.adapters import VGGTEstimator

    return VGGTEstimator(**kwargs)


def _mapanything(**kwargs: Any) -> GeometryEstimator:
    from geogrpo.perception.adapters import MapAnythingEstimator

    return MapAnythingEstimator(**kwargs)


ESTIMATORS: dict[str, Callable[..., GeometryEstimator]] = {
    "tinygeo": _tinygeo,
    "classical": _classical,
    "da3": _da3,
    "vggt": _vggt,
    "mapanything": _mapanything,
}


def make_estimator(name: str, **kwargs: Any) -> GeometryEstimator:
    """Build an estimator by name: ``tinygeo``, ``classical``, or an adapter (``da3``, ``vggt``,
    ``mapanything``: pass ``model_dir``)."""
    if name not in ESTIMATORS:
        raise ValueError(
            f"estimator: unknown name {name!r}; available are {', '.join(sorted(ESTIMATORS))}"
        )
    return ESTIMATORS[name](**kwargs)
