"""Procedural 3D world: scenes, renderer, datasets and the ground-truth camera evaluator."""
