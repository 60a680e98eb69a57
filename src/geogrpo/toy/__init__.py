"""Toy problems that exercise the RL math end to end in seconds."""

from geogrpo.toy.grpo2d import ToyGRPOConfig, ToyGRPOResult, plot_toy_result, run_toy_grpo

__all__ = ["ToyGRPOConfig", "ToyGRPOResult", "plot_toy_result", "run_toy_grpo"]
