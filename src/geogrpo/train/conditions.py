"""Building conditions: the one place that turns world items, a user's clip + trajectory file or
ADEVIS stages into :class:`ConditionInputs`, together with what the rewards compare against and,
where the world knows it, the true output.

Layouts are converted here and nowhere else: world items hold frames ``[F, H, W, 3]`` in
``[0, 1]``; the models take ``[B, 3, F, H, W]`` in ``[-1, 1]``; rewards take ``[B, F, H, W, 3]``
in ``[0, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from geogrpo.camera.adevis import AccumulationStage
from geogrpo.models.conditioning import ConditionInputs, reproject_source
from geogrpo.rewards.base import RewardBatch
from geogrpo.utils.video import frames_to_model, model_to_frames
from geogrpo.world.render import DEFAULT_FOV_DEG, intrinsics_from_fov

V2V = ("camera_v2v", "reproj_v2v")


@dataclass
class ConditionBatch:
    """``B`` conditions: the policy's inputs, what rewards compare with, and the truth."""

    prompts: list[str]
    inputs: ConditionInputs
    target_w2c: Tensor | None = None  # [B, F, 4, 4] cameras the output should have (absolute)
    intrinsics: Tensor | None = None  # [B, 3, 3] pixels
    source_frames: Tensor | None = None  # [B, F, H, W, 3] in [0, 1], v2v source
    reference_video: Tensor | None = None  # [B, F, H, W, 3] source reprojected to the target
    visible: Tensor | None = None  # [B, F, H, W] bool, where the reprojection has content
    truth: Tensor | None = None  # [B, F, H, W, 3] in [0, 1], the true output (world only)
    truth_depth: Tensor | None = None  # [B, F, H, W] z-depth of the true output (world only)

    def __len__(self) -> int:
        return len(self.prompts)

    def _tensors(self) -> list[str]:
        return [f.name for f in fields(self) if isinstance(getattr(self, f.name), Tensor)]

    def repeat(self, times: int) -> ConditionBatch:
        """Each condition ``times`` times in a row (a GRPO group per condition)."""
        return replace(
            self,
            prompts=[p for p in self.prompts for _ in range(times)],
            inputs=self.inputs.repeat(times),
            **{k: getattr(self, k).repeat_interleave(times, dim=0) for k in self._tensors()},
        )

    def select(self, rows: list[int]) -> ConditionBatch:
        """The chosen conditions."""
        index = torch.tensor(rows, dtype=torch.long)
        return replace(
            self,
            prompts=[self.prompts[i] for i in rows],
            inputs=self.inputs.select(index),
            **{k: getattr(self, k)[index] for k in self._tensors()},
        )

    def reward_batch(self, video: Tensor | None, latents: Tensor | None) -> RewardBatch:
        """What the rewards see for outputs ``video`` ``[B, F, H, W, 3]`` / ``latents``."""
        return RewardBatch(
            video=video,
            latents=latents,
            intrinsics=self.intrinsics,
            target_w2c=self.target_w2c,
            reference_video=self.reference_video,
            visible=self.visible,
            source_video=self.source_frames,
            prompts=list(self.prompts),
        )


def concat(batches: list[ConditionBatch]) -> ConditionBatch:
    """One batch of the conditions of several (same kind of fields in each)."""
    first = batches[0]

    def cat(name: str, get) -> Tensor | None:
        values = [get(b) for b in batches]
        if all(v is None for v in values):
            return None
        if any(v is None for v in values):
            raise ValueError(f"{name}: set in some condition batches and not in others")
        return torch.cat(values)

    inputs = replace(
        first.inputs,
        **{
            f.name: cat(f.name, lambda b, n=f.name: getattr(b.inputs, n))
            for f in fields(first.inputs)
            if f.name not in ("num_frames", "image_size")
        },
    )
    return replace(
        first,
        prompts=[p for b in batches for p in b.prompts],
        inputs=inputs,
        **{
            f.name: cat(f.name, lambda b, n=f.name: getattr(b, n))
            for f in fields(first)
            if f.name not in ("prompts", "inputs")
        },
    )


def _stack(items: list[dict[str, Any]], key: str) -> Tensor:
    return torch.stack([it[key].float() for it in items])


REFERENCE_GEOMETRY = ("estimated", "world")


def estimate_source_geometry(
    items: list[dict[str, Any]], estimator: Any, batch: int = 8
) -> list[dict[str, Any]]:
    """Copies of pair items with the estimator's depth and cameras of their source clip
    (``estimated_source_depth [F, H, W]``, ``estimated_source_w2c [F, 4, 4]``, relative to the
    first frame): the geometry a reward may use to reproject the source, as on real footage.
    The target cameras are metric, so the estimator must be too."""
    if estimator.scale != "metric":
        raise ValueError(
            f"estimator: {estimator.name} estimates up to scale, but the target cameras are "
            "metric; use a metric estimator (flow_pnp, tinygeo) or "
            "rewards.reference_geometry=world"
        )
    out = []
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        est = estimator.estimate(_stack(chunk, "source_video")).to("cpu")  # items live there
        if not bool(est.valid.all()):
            bad = [f"{start + i}: {r}" for i, r in enumerate(est.reasons) if r]
            raise ValueError(
                f"estimator: {estimator.name} could not estimate the source geometry of items "
                f"{bad}; use rewards.reference_geometry=world or another estimator"
            )
        for i, item in enumerate(chunk):
            out.append(
                {
                    **item,
                    "estimated_source_depth": est.depth[i].float(),
                    "estimated_source_w2c": est.w2c[i].float(),
                }
            )
    return out


def from_pairs(
    items: list[dict[str, Any]], conditioning: str, reference_geometry: str = "world"
) -> ConditionBatch:
    """Conditions of multi-view pairs (``MultiViewPairs``, ``SpeedRescaledPairs`` items): the
    source clip and the relative target path, with the true target clip as the truth.

    ``reference_geometry`` says which source geometry reprojects the source into the target
    cameras for the rewards (``reference_video``, ``visible``): ``"world"``, the world's true
    depth and cameras (a shortcut only the procedural world offers), or ``"estimated"``, the
    items' ``estimated_source_*`` fields (:func:`estimate_source_geometry`)."""
    if conditioning not in V2V:
        raise ValueError(
            f"conditioning: pairs condition a v2v policy ({V2V}), not {conditioning!r}"
        )
    if reference_geometry not in REFERENCE_GEOMETRY:
        raise ValueError(
            f"reference_geometry: {reference_geometry!r} is not one of "
            f"{', '.join(REFERENCE_GEOMETRY)}"
        )
    source = _stack(items, "source_video")  # [B, F, H, W, 3]
    _, f, h, w, _ = source.shape
    signed = frames_to_model(source)
    relative = _stack(items, "relative_w2c")
    k = _stack(items, "intrinsics")
    depth, src_w2c = _stack(items, "source_depth"), _stack(items, "source_w2c")
    if reference_geometry == "estimated":
        if "estimated_source_depth" not in items[0]:
            raise ValueError(
                "reference_geometry: 'estimated' needs items passed through "
                "estimate_source_geometry first"
            )
        ref_depth = _stack(items, "estimated_source_depth")
        ref_w2c = _stack(items, "estimated_source_w2c")
    else:
        ref_depth, ref_w2c = depth, src_w2c
    render, holes = reproject_source(signed, ref_depth, ref_w2c, relative, k)
    geometry = (
        {"source_depth": depth, "source_w2c": src_w2c} if conditioning == "reproj_v2v" else {}
    )
    inputs = ConditionInputs(
        num_frames=f,
        image_size=(h, w),
        source_video=signed,
        cameras=relative,
        intrinsics=k,
        **geometry,
    )
    return ConditionBatch(
        prompts=[it["caption"] for it in items],
        inputs=inputs,
        target_w2c=_stack(items, "target_w2c"),
        intrinsics=k,
        source_frames=source,
        reference_video=model_to_frames(render),
        visible=~holes,
        truth=_stack(items, "target_video"),
        truth_depth=_stack(items, "target_depth"),
    )


def from_clips(items: list[dict[str, Any]], conditioning: str) -> ConditionBatch:
    """Conditions of text-to-video clips (``TextToVideoClips`` items): the caption, whose camera
    words the keyword parser turns into exactly the path the true clip was rendered along."""
    if conditioning in V2V:
        raise ValueError(f"conditioning: clips condition a t2v policy, not {conditioning!r}")
    video = _stack(items, "video")
    _, f, h, w, _ = video.shape
    return ConditionBatch(
        prompts=[it["caption"] for it in items],
        inputs=ConditionInputs(num_frames=f, image_size=(h, w)),
        target_w2c=_stack(items, "w2c"),
        intrinsics=_stack(items, "intrinsics"),
        truth=video,
        truth_depth=_stack(items, "depth"),
    )


def from_items(
    items: list[dict[str, Any]], conditioning: str, reference_geometry: str = "world"
) -> ConditionBatch:
    """Pairs for v2v conditionings, clips for t2v ones."""
    if conditioning in V2V:
        return from_pairs(items, conditioning, reference_geometry)
    return from_clips(items, conditioning)


DATA_FOLDERS = {"pairs": "pairs", "speed_pairs": "speed_pairs", "clips": "t2v"}


def load_items(data: Any, split: str, n: int, kind: str | None = None) -> list[dict[str, Any]]:
    """The first ``n`` items of a split as the data config ``data`` (a
    :class:`~geogrpo.train.config.DataConfig`) describes them, rendered once and cached."""
    from geogrpo.world.datasets import (
        MultiViewPairs,
        SpeedRescaledPairs,
        TextToVideoClips,
        build_missing,
    )

    kind = kind or data.kind
    cls = {"pairs": MultiViewPairs, "speed_pairs": SpeedRescaledPairs, "clips": TextToVideoClips}
    ds = cls[kind](
        split,
        n,
        data.frames,
        data.size,
        seed=data.seed,
        dynamic_fraction=data.dynamic_fraction,
        cache_dir=Path(data.data_dir) / DATA_FOLDERS[kind] / split,
        width=data.width,
    )
    build_missing(ds, range(n), data.workers)
    return [ds[i] for i in range(n)]


def adevis_stage(
    base: ConditionBatch,
    stage: AccumulationStage,
    previous: Tensor | None,  # [1, F, H, W, 3] in [0, 1], the previous stage's output
    previous_depth: Tensor | None,  # [1, F, H, W], its (estimated) depth
) -> ConditionBatch:
    """The reproj_v2v condition of one ADEVIS stage of a one-condition ``base``.

    The stage reprojects either the source (with its depth) or the previous stage's output
    (with the depth estimated from it) from its camera ``reference_delta`` to the stage's
    camera ``target_delta`` (both relative to the source camera at the same frame). The
    rewards keep comparing with ``base``: the source reprojected to the final target.
    """
    if len(base) != 1 or base.inputs.source_w2c is None:
        raise ValueError("base: an ADEVIS stage is built from one reproj_v2v condition")
    if stage.fusion != "none" or stage.bullet_time_delta is not None:
        raise ValueError(
            f"stage: the embedded ADEVIS builder runs 'rfa' and 'rva' stages; stage "
            f"{stage.index} asks for fusion {stage.fusion!r} or a bullet-time ramp"
        )
    src_w2c = base.inputs.source_w2c
    if stage.reference == "source":
        video, depth = base.inputs.source_video, base.inputs.source_depth
    else:
        if previous is None or previous_depth is None:
            raise ValueError("previous: a 'previous' stage needs the last output and its depth")
        video, depth = frames_to_model(previous), previous_depth
    reference_w2c = stage.reference_delta.to(src_w2c)[None] @ src_w2c  # [1, F, 4, 4]
    inputs = replace(
        base.inputs,
        source_video=video,
        source_depth=depth,
        source_w2c=reference_w2c,
        cameras=stage.reproject_delta.to(src_w2c)[None],
    )
    return replace(base, inputs=inputs)


def load_source_clip(path: str | Path, need_geometry: bool, estimate_depth: bool = False) -> dict:
    """A user's source clip: an mp4, or the ``.safetensors`` that ``geogrpo world render`` writes
    next to it (frames, depth and cameras; ``reproj_v2v`` needs the latter two, or estimates them
    with tinygeo when ``estimate_depth``). Returns ``frames [1, F, H, W, 3]`` and the geometry."""
    from safetensors.torch import load_file

    from geogrpo.utils.video import read_video

    path = Path(path)
    tensors = path.with_suffix(".safetensors")
    if tensors.is_file() and not estimate_depth:
        data = load_file(str(tensors))
        return {
            "frames": data["rgb"][None].float(),
            "source_depth": data["depth"][None].float(),
            "source_w2c": data["w2c"][None].float(),
            "intrinsics": data["intrinsics"][None].float(),
        }
    if not path.is_file():
        raise FileNotFoundError(f"source: no file {path}")
    if need_geometry and not estimate_depth:
        raise ValueError(
            f"source: reproj_v2v needs the depth and cameras of the source; no {tensors} next to "
            f"{path}. Pass a clip written by `geogrpo world render` (it writes that file), or "
            "add --estimate-depth to estimate them with tinygeo"
        )
    frames = read_video(path)[None]
    if not need_geometry:
        return {"frames": frames}
    from geogrpo.perception.tinygeo import TinyGeoEstimator

    return {"frames": frames, **TinyGeoEstimator().estimate(frames).as_source_geometry()}


def target_path(spec: str | Path, num_frames: int) -> Tensor:
    """A v2v target path ``[F, 4, 4]``: a preset name or a trajectory file (our JSON/NPZ)."""
    from geogrpo.camera.io import load_trajectory
    from geogrpo.camera.presets import PRESETS, preset_trajectory

    if str(spec) in PRESETS:
        return preset_trajectory(str(spec), num_frames).float()
    path = Path(spec)
    if not path.is_file():
        raise ValueError(
            f"trajectory: {spec!r} is neither a preset ({', '.join(PRESETS)}) nor a trajectory "
            "file (our .json/.npz, see docs/CAMERAS.md)"
        )
    w2c = load_trajectory(path).w2c.float()
    if w2c.shape[0] != num_frames:
        raise ValueError(
            f"trajectory: {path} has {w2c.shape[0]} cameras but the source has {num_frames} frames"
        )
    return w2c


def from_user_clip(
    source: str | Path,
    trajectory: str | Path,
    conditioning: str,
    prompt: str = "A room.",
    estimate_depth: bool = False,
) -> ConditionBatch:
    """One v2v condition from a user's clip and a target path (preset or trajectory file)."""
    if conditioning not in V2V:
        raise ValueError(f"conditioning: a source clip conditions a v2v policy, not {conditioning}")
    clip = load_source_clip(source, conditioning == "reproj_v2v", estimate_depth)
    frames = clip.pop("frames")
    _, f, h, w, _ = frames.shape
    relative = target_path(trajectory, f)[None]
    k = clip.pop("intrinsics", None)
    k = k if k is not None else intrinsics_from_fov(DEFAULT_FOV_DEG, h, w).float()[None]
    geometry = clip if conditioning == "reproj_v2v" else {}
    inputs = ConditionInputs(
        num_frames=f,
        image_size=(h, w),
        source_video=frames_to_model(frames),
        cameras=relative,
        intrinsics=k,
        **geometry,
    )
    source_w2c = clip.get("source_w2c")
    return ConditionBatch(
        prompts=[prompt],
        inputs=inputs,
        target_w2c=relative @ source_w2c if source_w2c is not None else relative,
        intrinsics=k,
        source_frames=frames,
    )
