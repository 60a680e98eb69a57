"""Policies: Wan-architecture video generators, configs, LoRA and trainable-parameter selectors."""
