"""Supervised pretraining of the embedded tiny models on the procedural world's train split.

One module per shipped model: the autoencoder (frame reconstruction), the policies (one tiny DiT
per conditioning, flow matching on latents of the frozen autoencoder, text encoder trained
jointly), tinygeo, the LGM and the quality scorer. Each is a step-counted loop with a fixed
seed that can resume exactly, and writes its checkpoint, a JSONL/TensorBoard log and a
``manifest.json`` (command, seed, data, wall time, metrics, sha256 of every weight file).
This is SFT, not the GRPO trainer: it makes the base models GRPO then post-trains.
"""
