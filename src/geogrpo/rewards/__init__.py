"""Rewards: plain callables ``reward(batch) -> RewardOutput``, registered by name for recipes.

See :mod:`geogrpo.rewards.base` for the masking contract (never a NaN into the trainer).
"""

from geogrpo.rewards import composite, fidelity, geometry, quality, reconstruction
from geogrpo.rewards.base import (
    REWARDS,
    RewardBatch,
    RewardOutput,
    build_reward,
    register_reward,
)

__all__ = [
    "REWARDS",
    "RewardBatch",
    "RewardOutput",
    "build_reward",
    "composite",
    "fidelity",
    "geometry",
    "quality",
    "reconstruction",
    "register_reward",
]
