"""The only name -> object tables of the library, and the builders that use them.

Recipes and the CLI name things (``trajectory``, ``tinygeo``); everything below this layer takes
objects. Each estimator is built once per run and handed to every reward that needs it, so one
batch runs it once (rewards cache estimates on the batch by estimator object). Every model is
put on the run's device (``Shared.device``) once, here, when it is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from geogrpo.perception.base import GeometryEstimator
from geogrpo.rewards.base import Reward


def _tinygeo(**kwargs: Any) -> GeometryEstimator:
    from geogrpo.perception.tinygeo import TinyGeoEstimator

    return TinyGeoEstimator(**kwargs)


def _classical(**kwargs: Any) -> GeometryEstimator:
    from geogrpo.perception.classical import ClassicalEstimator

    return ClassicalEstimator(**kwargs)


def _flow_pnp(**kwargs: Any) -> GeometryEstimator:
    from geogrpo.perception.flow_pnp import FlowPnPEstimator

    return FlowPnPEstimator(**kwargs)


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
    "flow_pnp": _flow_pnp,
    "da3": _da3,
    "vggt": _vggt,
    "mapanything": _mapanything,
}


# OpenCV only: no model to move, they run on the CPU whatever the run's device (rewards move
# their estimates to the batch's device once).
CPU_ESTIMATORS = ("classical",)


def build_estimator(name: str, **kwargs: Any) -> GeometryEstimator:
    """An estimator by name: ``tinygeo``, ``flow_pnp``, ``classical``, or an adapter (``da3``,
    ``vggt``, ``mapanything``: pass ``model_dir``)."""
    if name not in ESTIMATORS:
        raise ValueError(
            f"estimator: unknown name {name!r}; available are {', '.join(sorted(ESTIMATORS))}"
        )
    try:
        return ESTIMATORS[name](**kwargs)
    except TypeError as err:
        raise ValueError(
            f"rewards.estimator_options: {name} does not take {sorted(kwargs)} ({err}); replace "
            "them, e.g. --set 'rewards.estimator_options={}'"
        ) from None


class Shared:
    """Objects several rewards of a run share, each built once, on first use, and the device
    every reward model of the run is put on: the trainer passes the policy's; None (eval
    suites, benches) leaves each model's own default, the CPU for the embedded ones (an
    adapter's ``device`` option, e.g. ``estimator_options: {device: cuda}``, always wins)."""

    def __init__(
        self,
        estimator_name: str,
        estimator_options: dict[str, Any],
        device: torch.device | str | None = None,
    ) -> None:
        self.estimator_name = estimator_name
        self.estimator_options = dict(estimator_options)
        self.device = None if device is None else torch.device(device)
        self._estimator: GeometryEstimator | None = None
        self._latent: Any = None

    def model_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` with the run's device added unless they name one (adapters take a
        string)."""
        if self.device is None:
            return dict(options)
        return {"device": str(self.device), **options}

    def estimator(self) -> GeometryEstimator:
        if self._estimator is None:
            options = self.estimator_options
            if self.estimator_name not in CPU_ESTIMATORS:
                options = self.model_options(options)
            self._estimator = build_estimator(self.estimator_name, **options)
        return self._estimator

    def latent_estimator(self) -> Any:
        """The Latent Geometry Model stitched to the RGB estimator (only tinygeo ships one)."""
        if self._latent is None:
            if self.estimator_name != "tinygeo":
                raise ValueError(
                    f"options.source: latent rewards need a Latent Geometry Model; only tinygeo "
                    f"has one (tinygeo-lgm), not {self.estimator_name!r}"
                )
            from geogrpo.perception.latent import LatentGeometryEstimator

            self._latent = LatentGeometryEstimator("tinygeo-lgm", device=self.device)
        return self._latent


def _geometry_reward(cls_path: str) -> Callable[..., Reward]:
    def make(shared: Shared, **options: Any) -> Reward:
        module, name = cls_path.rsplit(".", 1)
        cls = getattr(__import__(module, fromlist=[name]), name)
        latent = options.get("source") == "latent"
        return cls(shared.latent_estimator() if latent else shared.estimator(), **options)

    return make


def _reconstruction(shared: Shared, **options: Any) -> Reward:
    from geogrpo.rewards.reconstruction import ReconstructionReward

    return ReconstructionReward(shared.estimator(), device=shared.device, **options)


def _view_fidelity(shared: Shared, **options: Any) -> Reward:
    from geogrpo.rewards.fidelity import ViewFidelityReward

    if options.get("weights") and len(options["weights"]) == 4 and options["weights"][3] > 0:
        from geogrpo.perception.quality import TinyQualityScorer

        if "quality" not in options:
            options["quality"] = TinyQualityScorer.from_pretrained().to(shared.device)
    return ViewFidelityReward(device=shared.device, **options)


# The papers' quality models behind the quality reward: ``scorer: hpsv3`` (Geo-Align, World-R1)
# or ``scorer: videoalign`` (Geo-Align), the rest of the options go to the scorer.
QUALITY_SCORERS = {"hpsv3": "HPSv3Scorer", "videoalign": "VideoAlignScorer"}


def _quality(shared: Shared, **options: Any) -> Reward:
    from geogrpo.rewards.quality import QualityReward

    if options.get("scorer") in QUALITY_SCORERS:
        from geogrpo.perception import quality

        cls = getattr(quality, QUALITY_SCORERS[options.pop("scorer")])
        every = options.pop("every", 1)
        return QualityReward(cls(**shared.model_options(options)), every=every)
    return QualityReward(device=shared.device, **options)


def _composite(shared: Shared, **options: Any) -> Reward:
    raise ValueError(
        "rewards: list the parts as separate rewards with weights; the trainer keeps them "
        "apart as [N, G, K] (composite is for scoring outside training)"
    )


REWARDS: dict[str, Callable[..., Reward]] = {
    "trajectory": _geometry_reward("geogrpo.rewards.geometry.TrajectoryReward"),
    "smoothness": _geometry_reward("geogrpo.rewards.geometry.SmoothnessReward"),
    "reprojection": _geometry_reward("geogrpo.rewards.geometry.ReprojectionReward"),
    "reconstruction": _reconstruction,
    "view_fidelity": _view_fidelity,
    "quality": _quality,
    "composite": _composite,
}


def build_reward(name: str, shared: Shared | None = None, **options: Any) -> Reward:
    """A reward by name; geometry rewards get ``shared``'s estimator object."""
    if name not in REWARDS:
        raise ValueError(f"reward: unknown name {name!r}; known are {', '.join(sorted(REWARDS))}")
    shared = shared or Shared("tinygeo", {})
    try:
        return REWARDS[name](shared, **options)
    except TypeError as err:
        raise ValueError(f"reward {name}: bad options {sorted(options)} ({err})") from None


def build_rewards(specs: list[Any], shared: Shared):
    """``[(name, weight, reward)]`` for a recipe's reward specs; every geometry reward gets
    ``shared``'s one estimator object, and every reward model is put on ``shared.device``."""
    return [
        (spec.name, float(spec.weight), build_reward(spec.name, shared, **dict(spec.options)))
        for spec in specs
    ]


def build_guidance_reward(name: str, shared: Shared | None = None) -> Callable[[Any], Any]:
    """A differentiable reward of latents ``[B, C, F, h, w] -> [B]`` for test-time guidance
    (VGGRPO): ``smoothness`` through the Latent Geometry Model. Reprojection is not offered: its
    z-buffered splatting has no useful gradient."""
    if name != "smoothness":
        raise ValueError(
            f"guidance reward: {name!r} has no differentiable latent form; use smoothness"
        )
    from geogrpo.rewards.geometry import smoothness_score

    lgm = (shared or Shared("tinygeo", {})).latent_estimator()
    return lambda latents: smoothness_score(lgm.cameras(latents))


def needs_pixels(reward: Reward) -> bool:
    """Whether a reward reads the decoded video (latent rewards do not)."""
    return getattr(reward, "source", "rgb") != "latent"
