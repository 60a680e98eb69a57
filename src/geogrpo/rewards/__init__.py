"""Rewards: plain callables ``reward(batch) -> RewardOutput`` over estimator objects.

See :mod:`geogrpo.rewards.base` for the masking contract (never a NaN into the trainer); the
name -> reward table lives at the edge, in :mod:`geogrpo.recipes.build`.
"""

from geogrpo.rewards.base import RewardBatch, RewardOutput

__all__ = ["RewardBatch", "RewardOutput"]
