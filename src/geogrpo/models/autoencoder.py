"""Video autoencoders behind one interface: Wan's ``AutoencoderKLWan`` and the embedded stand-in.

Both map videos ``[B, 3, F, H, W]`` in ``[-1, 1]`` with ``F = 4k + 1`` frames to normalised
latents ``[B, C, k + 1, H / 8, W / 8]`` (8x spatial, 4x temporal, frame 0 alone: Wan's causal
layout) and back. Latents are normalised per channel (``(z - mean) / std``) so the DiT sees unit
scale, as Wan's pipelines do with ``latents_mean`` / ``latents_std``.

* :class:`WanVideoAutoencoder` wraps diffusers ``AutoencoderKLWan``: the full-scale path (Wan2.1's
  VAE loaded from a local checkpoint), tested here on tiny random configs.
* :class:`FrameAutoencoder` is the **embedded stand-in** for it. On a 2-core CPU a tiny
  ``AutoencoderKLWan`` stalls at 16-18 dB on the procedural world (``bench/vae_feasibility.py``),
  far from the 28 dB floor. The stand-in encodes each frame with a small 2D conv net (8x down,
  ``frame_channels`` channels) and folds 4 consecutive frame latents into channels, so it has the
  same latent grid as Wan (same DiT token count, same noise layout) with ``4 x frame_channels``
  channels instead of 16.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geogrpo.utils.checks import check_int_range
from geogrpo.utils.integrity import (
    load_json_object,
    load_safetensors,
    verify_manifest,
    write_digests_manifest,
)
from geogrpo.utils.io import atomic_save_safetensors, atomic_write_json

SPATIAL_STRIDE = 8
TEMPORAL_STRIDE = 4
# Frames per conv call on the CPU: a batch's frames all at once spill the caches (8 clips of 17
# frames at 96x96 decoded 2.4x slower than in chunks of 8 frames on one thread; the shipped
# decoder's outputs were identical, in general they agree to float rounding); a GPU takes them
# all at once.
CPU_FRAME_CHUNK = 8


def check_video_shape(video: Tensor, spatial: int = SPATIAL_STRIDE, temporal: int = 4) -> None:
    """Wan frame counts are ``4k + 1`` and sizes multiples of the VAE stride x patch size."""
    if video.ndim != 5 or video.shape[1] != 3:
        raise ValueError(f"video: expected [B, 3, F, H, W], got {tuple(video.shape)}")
    f, h, w = video.shape[2:]
    if (f - 1) % temporal:
        raise ValueError(
            f"video: {f} frames; Wan models take 4k + 1 frames (e.g. {f - (f - 1) % temporal} "
            f"or {f - (f - 1) % temporal + temporal})"
        )
    if h % spatial or w % spatial:
        raise ValueError(
            f"video: {h}x{w} is not divisible by {spatial}; resize or crop to a multiple "
            f"(e.g. {h - h % spatial}x{w - w % spatial})"
        )


def latent_frames(num_frames: int) -> int:
    """Pixel frames ``4k + 1`` -> latent frames ``k + 1``."""
    if num_frames < 1 or (num_frames - 1) % TEMPORAL_STRIDE:
        raise ValueError(f"num_frames: {num_frames} is not 4k + 1 (Wan frame counts)")
    return (num_frames - 1) // TEMPORAL_STRIDE + 1


def fold_frames(z: Tensor) -> Tensor:
    """``[B, c, 4k + 1, h, w]`` -> ``[B, 4c, k + 1, h, w]``; frame 0 is repeated into its slot."""
    b, c, _, h, w = z.shape
    z = torch.cat([z[:, :, :1].expand(-1, -1, TEMPORAL_STRIDE - 1, -1, -1), z], dim=2)
    z = z.reshape(b, c, -1, TEMPORAL_STRIDE, h, w)  # [B, c, k + 1, 4, h, w]
    return z.transpose(2, 3).reshape(b, c * TEMPORAL_STRIDE, -1, h, w)


def unfold_frames(z: Tensor) -> Tensor:
    """Inverse of :func:`fold_frames`; the repeated slots of frame 0 are averaged."""
    b, c4, k1, h, w = z.shape
    c = c4 // TEMPORAL_STRIDE
    z = z.reshape(b, c, TEMPORAL_STRIDE, k1, h, w).transpose(2, 3).reshape(b, c, -1, h, w)
    first = z[:, :, :TEMPORAL_STRIDE].mean(dim=2, keepdim=True)
    return torch.cat([first, z[:, :, TEMPORAL_STRIDE:]], dim=2)


class _ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.GroupNorm(8, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(8, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


def _by_chunks(net: nn.Module, frames: Tensor) -> Tensor:
    """``net`` over ``frames [N, ...]``, :data:`CPU_FRAME_CHUNK` frames a call on the CPU (every
    layer is per frame, so the result is the same)."""
    if frames.device.type != "cpu" or frames.shape[0] <= CPU_FRAME_CHUNK:
        return net(frames)
    return torch.cat([net(chunk) for chunk in frames.split(CPU_FRAME_CHUNK)])


class FrameAutoencoder(nn.Module):
    """Embedded stand-in for ``AutoencoderKLWan`` (see the module docstring): per-frame 2D conv
    autoencoder with Wan's latent grid. Deterministic (no KL term); a little latent noise during
    training keeps the decoder tolerant of the DiT's imperfect latents."""

    def __init__(self, frame_channels: int = 16, widths: tuple[int, ...] = (32, 64, 96)) -> None:
        super().__init__()
        check_int_range("frame_channels", frame_channels, 1)
        if len(widths) != 3:
            raise ValueError(f"widths: need 3 stages for 8x downsampling, got {widths}")
        self.config = {"frame_channels": frame_channels, "widths": list(widths)}
        self.latent_channels = frame_channels * TEMPORAL_STRIDE
        enc: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, padding=1)]
        for i, wd in enumerate(widths):
            nxt = widths[min(i + 1, len(widths) - 1)]
            enc += [_ResBlock(wd), nn.Conv2d(wd, nxt, 4, stride=2, padding=1)]
        enc += [_ResBlock(widths[-1]), nn.Conv2d(widths[-1], frame_channels, 1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(frame_channels, widths[-1], 3, padding=1)]
        for i, wd in enumerate(reversed(widths)):
            nxt = list(reversed(widths))[min(i + 1, len(widths) - 1)]
            dec += [
                _ResBlock(wd),
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(wd, nxt, 3, padding=1),
            ]
        dec += [_ResBlock(widths[0]), nn.GroupNorm(8, widths[0]), nn.SiLU()]
        dec += [nn.Conv2d(widths[0], 3, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)
        self.register_buffer("latents_mean", torch.zeros(self.latent_channels))
        self.register_buffer("latents_std", torch.ones(self.latent_channels))

    def encode_frames(self, frames: Tensor) -> Tensor:
        """``[N, 3, H, W]`` -> raw frame latents ``[N, c, H / 8, W / 8]``."""
        return _by_chunks(self.encoder, frames)

    def decode_frames(self, z: Tensor) -> Tensor:
        """Raw frame latents -> frames, unclamped (train through this)."""
        return _by_chunks(self.decoder, z)

    def encode(self, video: Tensor) -> Tensor:
        """``[B, 3, 4k + 1, H, W]`` in ``[-1, 1]`` -> normalised latents ``[B, C, k + 1, h, w]``."""
        check_video_shape(video)
        b, _, f, h, w = video.shape
        frames = video.transpose(1, 2).reshape(b * f, 3, h, w)
        z = self.encode_frames(frames)
        z = z.reshape(b, f, *z.shape[1:]).transpose(1, 2)  # [B, c, F, h, w]
        return _normalise(fold_frames(z), self.latents_mean, self.latents_std)

    def decode(self, latents: Tensor, clamp: bool = True) -> Tensor:
        """Normalised latents -> video ``[B, 3, 4k + 1, H, W]`` (clamped to [-1, 1] unless told)."""
        z = unfold_frames(_denormalise(latents, self.latents_mean, self.latents_std))
        b, c, f, h, w = z.shape
        frames = self.decode_frames(z.transpose(1, 2).reshape(b * f, c, h, w))
        video = frames.reshape(b, f, 3, *frames.shape[-2:]).transpose(1, 2)
        return video.clamp(-1, 1) if clamp else video

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(directory / "config.json", {"class": "FrameAutoencoder", **self.config})
        atomic_save_safetensors(directory / "model.safetensors", self.state_dict())
        write_digests_manifest(directory)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, verify: bool | None = None
    ) -> FrameAutoencoder:
        """Load a folder written by :meth:`save_pretrained`; its ``manifest.json`` is checked
        first (:func:`~geogrpo.utils.integrity.verify_manifest`) unless ``verify=False``."""
        directory = Path(directory)
        verify_manifest(directory, verify=verify)
        config = load_json_object(directory / "config.json", "autoencoder config")
        config.pop("class", None)
        model = cls(config["frame_channels"], tuple(config["widths"]))
        model.load_state_dict(load_safetensors(directory / "model.safetensors"))
        return model


class WanVideoAutoencoder(nn.Module):
    """diffusers ``AutoencoderKLWan`` with Wan's latent normalisation: the full-scale path."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae
        cfg = vae.config
        self.latent_channels = cfg.z_dim
        mean = getattr(cfg, "latents_mean", None) or [0.0] * cfg.z_dim
        std = getattr(cfg, "latents_std", None) or [1.0] * cfg.z_dim
        self.register_buffer("latents_mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("latents_std", torch.tensor(std, dtype=torch.float32))

    def encode(self, video: Tensor) -> Tensor:
        check_video_shape(video)
        z = self.vae.encode(video).latent_dist.mode()
        return _normalise(z, self.latents_mean, self.latents_std)

    def decode(self, latents: Tensor, clamp: bool = True) -> Tensor:
        z = _denormalise(latents, self.latents_mean, self.latents_std)
        if clamp:
            return self.vae.decode(z).sample
        # diffusers clamps inside decode(); training needs the gradient of saturated pixels.
        self.vae.clear_cache()
        x = self.vae.post_quant_conv(z)
        frames = []
        for i in range(x.shape[2]):
            self.vae._conv_idx = [0]
            frames.append(
                self.vae.decoder(
                    x[:, :, i : i + 1],
                    feat_cache=self.vae._feat_map,
                    feat_idx=self.vae._conv_idx,
                    first_chunk=i == 0,
                )
            )
        self.vae.clear_cache()
        if self.vae.config.patch_size is not None:
            raise ValueError("vae: unclamped decoding of patchified (Wan2.2) VAEs is not supported")
        return torch.cat(frames, dim=2)

    def save_pretrained(self, directory: str | Path) -> None:
        self.vae.save_pretrained(str(directory))

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, verify: bool | None = None
    ) -> WanVideoAutoencoder:
        """A diffusers Wan VAE folder, its weights from safetensors only (never a pickled
        ``.bin``); a ``manifest.json`` there is checked first (a Hub download has none)."""
        from diffusers import AutoencoderKLWan

        verify_manifest(directory, verify=verify, required=False)
        return cls(AutoencoderKLWan.from_pretrained(str(directory), use_safetensors=True))


def _normalise(z: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    shape = (1, -1, 1, 1, 1)
    return (z - mean.to(z).view(shape)) / std.to(z).view(shape)


def _denormalise(z: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    shape = (1, -1, 1, 1, 1)
    return z * std.to(z).view(shape) + mean.to(z).view(shape)


def load_autoencoder(directory: str | Path, *, verify: bool | None = None) -> nn.Module:
    """Either autoencoder from its folder (our ``FrameAutoencoder`` or a diffusers Wan VAE)."""
    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"directory: no autoencoder config.json in {directory}")
    config = load_json_object(config_path, "autoencoder config")
    if config.get("class") == "FrameAutoencoder":
        return FrameAutoencoder.from_pretrained(directory, verify=verify)
    if config.get("_class_name") == "AutoencoderKLWan":
        return WanVideoAutoencoder.from_pretrained(directory, verify=verify)
    raise ValueError(f"directory: {config_path} describes neither FrameAutoencoder nor a Wan VAE")


def frame_reconstruction_loss(recon: Tensor, target: Tensor) -> Tensor:
    """L1 + MSE: L1 keeps edges sharp, MSE is what PSNR measures."""
    return F.l1_loss(recon, target) + F.mse_loss(recon, target)
