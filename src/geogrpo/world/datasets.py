"""Datasets from the procedural world: text-to-video clips and synchronized multi-view pairs.

Everything is a pure function of (split, index, seed, sizes): the same request gives the same
bytes, so datasets are cached to disk only to save time, never to fix randomness. Item ``i``
always shows scene ``i`` of its split; the dataset ``seed`` varies cameras, captions and motion,
so two seeds give new views of the same scenes, never scenes of another split. Splits:

* ``train`` and ``val``: procedural textures (checker, stripes, noise) on boxes and spheres,
  disjoint scene seeds.
* ``heldout_shapes``: texture families (gradient) and object types (cylinders) never seen in train.
* ``heldout_photo``: photographs bundled with scikit-image as textures. Never used for training
  anything: :func:`check_training_split` refuses it, and every trainer calls it.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from geogrpo.camera.keywords import camera_keywords_to_trajectory
from geogrpo.camera.presets import PRESETS, preset_trajectory
from geogrpo.camera.se3 import check_pose, invert_pose
from geogrpo.camera.trajectory import SpeedPrior, sample_speed_rescaled
from geogrpo.utils.checks import check_choice, check_device, check_int_range
from geogrpo.utils.io import atomic_save_safetensors, atomic_write_json
from geogrpo.world.paths import make_path, orbit_path
from geogrpo.world.render import Render, render
from geogrpo.world.scene import Primitive, Scene, generate_scene


@dataclass(frozen=True)
class SplitSpec:
    """Which scene domain a split draws from and where its seeds start."""

    domain: str
    seed_offset: int
    trainable: bool


SCENES_PER_SPLIT = 1_000_000  # seed ranges of the splits never overlap
EXTREME_ORBIT_SHARE = 0.2  # share of multi-view pairs whose target orbits 60-90 degrees
SPLITS = {
    "train": SplitSpec("procedural", 0, True),
    "val": SplitSpec("procedural", SCENES_PER_SPLIT, False),
    "heldout_shapes": SplitSpec("heldout_shapes", 2 * SCENES_PER_SPLIT, False),
    "heldout_photo": SplitSpec("heldout_photo", 3 * SCENES_PER_SPLIT, False),
}


def check_training_split(split: str) -> str:
    """Refuse any split but ``train`` for training (held-out domains stay unseen)."""
    check_choice("split", split, tuple(SPLITS))
    if not SPLITS[split].trainable:
        raise ValueError(f"split: {split!r} is an evaluation split and must never be trained on")
    return split


def scene_for(split: str, index: int, dynamic: bool = False) -> Scene:
    """The scene of item ``index`` of ``split`` (scene seeds of different splits are disjoint)."""
    check_choice("split", split, tuple(SPLITS))
    check_int_range("index", index, 0, SCENES_PER_SPLIT - 1)
    spec = SPLITS[split]
    return generate_scene(spec.seed_offset + index, spec.domain, dynamic=dynamic)


_COLOR_NAMES = {
    "white": (0.9, 0.9, 0.9),
    "grey": (0.5, 0.5, 0.5),
    "black": (0.15, 0.15, 0.15),
    "red": (0.75, 0.25, 0.2),
    "orange": (0.85, 0.55, 0.2),
    "yellow": (0.8, 0.75, 0.25),
    "green": (0.3, 0.65, 0.3),
    "teal": (0.25, 0.6, 0.6),
    "blue": (0.25, 0.35, 0.75),
    "purple": (0.55, 0.3, 0.65),
    "pink": (0.85, 0.5, 0.65),
    "brown": (0.5, 0.35, 0.2),
}
_TEXTURE_WORDS = {
    "checker": "checkered",
    "stripes": "striped",
    "noise": "mottled",
    "gradient": "banded",
}
_SHAPE_WORDS = {"box": "box", "sphere": "ball", "cylinder": "pillar"}
# Camera phrases the keyword parser understands; one or two are combined per caption.
_CAMERA_PHRASES = (
    "pans left",
    "pans right",
    "tilts up",
    "tilts down",
    "dollies forward",
    "pulls back",
    "trucks left",
    "trucks right",
    "orbits left",
    "orbits right",
    "rises",
    "descends",
)
_SPEED_WORDS = ("", "", "slowly ", "quickly ")


def color_name(rgb: tuple[float, float, float]) -> str:
    """Nearest named colour."""
    return min(
        _COLOR_NAMES,
        key=lambda n: sum((a - b) ** 2 for a, b in zip(_COLOR_NAMES[n], rgb, strict=True)),
    )


# The longest caption the grammar writes, in words as :func:`caption_words` counts them: what
# the embedded text encoders read (their learned positional table has this many rows, so the
# shipped ones can read no more). Procedural captions stay within it by construction (at most
# 35 scene words + 11 camera words); photo captions are shortened to fit (:func:`describe_scene`).
CAPTION_MAX_WORDS = 48


def caption_words(text: str) -> list[str]:
    """The words of a caption as the embedded text encoder reads them (lower case, ``,`` and
    ``.`` are words, anything else separates)."""
    return re.findall(r"[a-z]+|[,.]", text.lower())


def describe_scene(scene: Scene, max_words: int = CAPTION_MAX_WORDS) -> str:
    """One sentence naming the objects of a scene (the prompt grammar's content part), at most
    ``max_words`` words.

    Photo-covered objects read "a ball covered in a coffee photo". Where that sentence is longer
    than ``max_words`` (a room of five or six photo objects), every photo object reads the short
    form "a coffee photo ball" instead: the photo's first name word where a procedural object has
    its colour, "photo" where it has its texture word, the shape last. That has the word count of
    a procedural object, so the short sentence is never longer than a procedural one (35 words).
    Procedural objects, and so every train and val caption, have a single form.
    """
    for short in (False, True):
        parts = [_describe_object(p, short) for p in scene.primitives if p.kind != "plane"]
        listing = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
        text = f"A room with {listing}."
        if len(caption_words(text)) <= max_words:
            return text
    raise ValueError(
        f"max_words: the scene needs {len(caption_words(text))} words even in the short form, "
        f"more than {max_words}"
    )


def _describe_object(p: Primitive, short: bool) -> str:
    moving = "moving " if p.dynamic else ""
    if p.texture.kind == "photo" and short:
        words = f"{moving}{p.texture.photo.split('_')[0]} photo {_SHAPE_WORDS[p.kind]}"
    elif p.texture.kind == "photo":
        name = p.texture.photo.replace("_", " ")
        words = f"{moving}{_SHAPE_WORDS[p.kind]} covered in a {name} photo"
    else:
        words = (
            f"{moving}{color_name(p.texture.colors[0])} "
            f"{_TEXTURE_WORDS[p.texture.kind]} {_SHAPE_WORDS[p.kind]}"
        )
    return ("an " if words[0] in "aeiou" else "a ") + words


def caption_for(scene: Scene, camera_text: str = "") -> str:
    """The caption of an item: the scene sentence, then the camera sentence if there is one,
    together at most :data:`CAPTION_MAX_WORDS` words (the camera sentence is never shortened)."""
    if not camera_text:
        return describe_scene(scene)
    budget = CAPTION_MAX_WORDS - len(caption_words(camera_text))
    return f"{describe_scene(scene, budget)} {camera_text}"


def sample_camera_text(rng: torch.Generator) -> str:
    """A camera sentence from the grammar, e.g. 'The camera slowly pans left, then tilts up.'"""

    def pick(options: tuple[str, ...]) -> str:
        return options[int(torch.randint(len(options), (1,), generator=rng))]

    first = pick(_SPEED_WORDS) + pick(_CAMERA_PHRASES)
    roll = float(torch.rand(1, generator=rng))
    if roll < 0.3:
        second = pick(_CAMERA_PHRASES)
        if second.split()[0] not in first:  # "pans left while pans right" says nothing
            first = f"{first} while {second}"
    elif roll < 0.55:
        first = f"{first}, then {pick(_SPEED_WORDS)}{pick(_CAMERA_PHRASES)}"
    return f"The camera {first}."


def _stable_seed(*parts: object) -> int:
    """A seed from values, identical across processes (Python's ``hash`` of str is salted)."""
    return zlib.crc32("/".join(map(str, parts)).encode())


class _WorldClips(Dataset):
    """Shared shell: argument checks, per-item RNG and scene, and the safetensors cache."""

    kind = ""  # cache file prefix and RNG namespace
    min_frames = 1

    def __init__(
        self,
        split: str,
        n: int,
        num_frames: int = 17,
        size: int = 96,
        seed: int = 0,
        dynamic_fraction: float = 0.3,
        cache_dir: str | Path | None = None,
        width: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        check_choice("split", split, tuple(SPLITS))
        # where items are rendered (they are kept on the CPU); not a setting of the cache: a
        # device changes a picture by float rounding only
        self.device = check_device("device", device)
        self.split, self.n = split, check_int_range("n", n, 1, SCENES_PER_SPLIT)
        self.num_frames = check_int_range("num_frames", num_frames, self.min_frames)
        self.size, self.seed = check_int_range("size", size, 8), seed
        # clips are size x width; None or 0 is square (size x size)
        self.width = check_int_range("width", width, 8) if width else self.size
        if not 0.0 <= dynamic_fraction <= 1.0:
            raise ValueError(f"dynamic_fraction: must be in [0, 1], got {dynamic_fraction}")
        self.dynamic_fraction = dynamic_fraction
        self.cache_dir = Path(cache_dir) if cache_dir else None
        if self.cache_dir is not None:
            _claim_cache(
                self.cache_dir,
                {
                    "kind": self.kind,
                    "split": split,
                    "num_frames": num_frames,
                    "size": size,
                    "seed": seed,
                    "dynamic_fraction": dynamic_fraction,
                    # only non-square sets name a width: square caches keep their settings.json
                    **({"width": self.width} if self.width != self.size else {}),
                },
            )

    def __len__(self) -> int:
        return self.n

    def is_cached(self, index: int) -> bool:
        return self.cache_dir is not None and _cache_path(self.cache_dir, self.kind, index).exists()

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.n:
            raise IndexError(f"index: {index} outside [0, {self.n})")
        cached = _load_cached(self.cache_dir, self.kind, index)
        if cached is not None:
            # the caption is text about the cached scene: written by today's grammar, so items
            # cached before a grammar fix (overlong photo captions) read as fresh ones do
            if "caption" in cached and "scene" in cached:
                scene = Scene.from_json(cached["scene"])
                cached["caption"] = caption_for(scene, cached.get("camera_text", ""))
            return cached
        rng, scene = self._draw(index)
        item = self._make(scene, rng)
        _save_cached(self.cache_dir, self.kind, index, item)
        return item

    def caption(self, index: int) -> str:
        """``self[index]["caption"]`` without rendering the item (the same random draws)."""
        if not 0 <= index < self.n:
            raise IndexError(f"index: {index} outside [0, {self.n})")
        rng, scene = self._draw(index)
        return caption_for(scene, self._camera_text(rng))

    def _draw(self, index: int) -> tuple[torch.Generator, Scene]:
        """The item's generator and scene: every item's first draws."""
        rng = torch.Generator().manual_seed(_stable_seed(self.kind, self.split, self.seed, index))
        dynamic = float(torch.rand(1, generator=rng)) < self.dynamic_fraction
        return rng, scene_for(self.split, index, dynamic)

    def _camera_text(self, rng: torch.Generator) -> str:
        """The camera sentence of the caption, drawn first after the scene ("" for none)."""
        return ""

    def _make(self, scene: Scene, rng: torch.Generator) -> dict[str, Any]:
        raise NotImplementedError

    def _render(self, scene: Scene, w2c: Tensor, height: int, width: int) -> Render:
        """A clip rendered on the dataset's device, returned on the CPU."""
        return render(scene, w2c, height, width, device=self.device).to("cpu")


class TextToVideoClips(_WorldClips):
    """Text-to-video clips: caption (scene + camera words), the clip, its depth and cameras."""

    kind = "t2v"

    def _camera_text(self, rng: torch.Generator) -> str:
        return sample_camera_text(rng)

    def _make(self, scene: Scene, rng: torch.Generator) -> dict[str, Any]:
        camera_text = self._camera_text(rng)
        w2c = camera_keywords_to_trajectory(camera_text, max(self.num_frames, 2))[: self.num_frames]
        r = self._render(scene, w2c, self.size, self.width)
        return {
            "video": r.rgb,
            "depth": r.depth,
            "dynamic": r.dynamic,
            "w2c": r.w2c,
            "intrinsics": r.intrinsics,
            "caption": caption_for(scene, camera_text),
            "camera_text": camera_text,
            "scene": scene.to_json(),
        }


class MultiViewPairs(_WorldClips):
    """Synchronized video-to-video pairs: a source clip and the true clip along a target path.

    The source camera follows a walking or game path; the target camera at frame ``f`` is the
    source camera moved by ``relative[f]`` (one of the ten presets, or with probability
    ``EXTREME_ORBIT_SHARE`` an orbit of 60-90 degrees about the point 6 units ahead, the extreme
    views of DEVIS-GRPO), i.e. ``target_w2c[f] = relative[f] @ source_w2c[f]``. Both clips see the
    same moving objects at the same times: the target video is the exact ground truth.
    """

    kind = "pair"
    min_frames = 2

    def _make(self, scene: Scene, rng: torch.Generator) -> dict[str, Any]:
        source_w2c, relative, relative_kind = self._paths(rng)
        src = self._render(scene, source_w2c, self.size, self.width)
        source = _source_fields(src, scene)
        target = self._render_target(scene, source, relative)
        return _pair_fields(source, target, relative, relative_kind)

    def source_path(self, index: int) -> tuple[Scene, Tensor]:
        """``(scene, source_w2c [F, 4, 4])`` of item ``index``, drawn as ``self[index]`` draws
        them, without rendering anything."""
        if not 0 <= index < self.n:
            raise IndexError(f"index: {index} outside [0, {self.n})")
        rng, scene = self._draw(index)
        return scene, self._draw_source_path(rng)[0]

    def source_along(self, index: int) -> dict[str, Any]:
        """The source half of item ``index``, for :meth:`target_along`: the same scene and the
        same source path as ``self[index]`` (``source_video``, ``source_depth``, ``source_w2c``,
        ``intrinsics``, ``source_dynamic``, ``caption``, ``scene``), read from the cache when
        the item is cached, else rendered (and not cached: the cache holds whole items).

        Render it once and call :meth:`target_along` per target path (the ten presets of an
        evaluation, a user's paths): a target then costs one render instead of two.
        """
        if not 0 <= index < self.n:
            raise IndexError(f"index: {index} outside [0, {self.n})")
        cached = _load_cached(self.cache_dir, self.kind, index)
        if cached is not None:
            source = {key: cached[key] for key in _SOURCE_KEYS}
            source["caption"] = caption_for(Scene.from_json(source["scene"]))  # as __getitem__
            return source
        scene, source_w2c = self.source_path(index)
        return _source_fields(self._render(scene, source_w2c, self.size, self.width), scene)

    def target_along(
        self,
        source: dict[str, Any],
        relative: Tensor,  # [F, 4, 4] world-to-camera relative to the source camera, OpenCV
        kind_name: str,
    ) -> dict[str, Any]:
        """A pair with the keys of ``self[index]``: ``source`` (from :meth:`source_along`) and
        the true clip along ``target_w2c[f] = relative[f] @ source_w2c[f]``, the same moving
        objects at the same times. ``kind_name`` becomes ``relative_kind`` (a preset's name, a
        user path's name). With the relative path and kind an item drew, this is that item."""
        if not isinstance(kind_name, str) or not kind_name:
            raise ValueError(f"kind_name: expected a non-empty name, got {kind_name!r}")
        if not isinstance(relative, Tensor) or not relative.is_floating_point():
            raise ValueError(f"relative: expected a float tensor [F, 4, 4], got {relative!r}")
        frames = source["source_w2c"].shape[0]
        if relative.shape != (frames, 4, 4):
            raise ValueError(
                f"relative: expected [{frames}, 4, 4] (one pose per frame of the source clip), "
                f"got {list(relative.shape)}"
            )
        check_pose("relative", relative)
        relative = relative.detach().cpu().to(torch.float64)
        scene = Scene.from_json(source["scene"])
        target = self._render_target(scene, source, relative)
        return _pair_fields(source, target, relative, kind_name)

    def pair_along(self, index: int, relative: Tensor, kind_name: str) -> dict[str, Any]:
        """Item ``index``'s source clip and the true target along ``relative [F, 4, 4]`` (see
        :meth:`target_along`). The last source is kept, so calling this for every path of one
        index in a row renders the source once (the items then share its tensors)."""
        memo = self.__dict__.get("_last_source")
        if memo is None or memo[0] != index:
            memo = (index, self.source_along(index))
            self._last_source = memo
        return self.target_along(memo[1], relative, kind_name)

    def __getstate__(self) -> dict[str, Any]:
        # worker processes of build_missing need the settings, not a rendered clip
        return {k: v for k, v in self.__dict__.items() if k != "_last_source"}

    def _render_target(self, scene: Scene, source: dict[str, Any], relative: Tensor) -> Render:
        height, width = source["source_video"].shape[1:3]
        return self._render(scene, relative @ source["source_w2c"], height, width)

    def _draw_source_path(self, rng: torch.Generator) -> tuple[Tensor, int]:
        """``(source_w2c [F, 4, 4], path seed)``: the first draws of :meth:`_paths`."""
        path_seed = int(torch.randint(1 << 30, (1,), generator=rng))
        source_kind = "walking" if float(torch.rand(1, generator=rng)) < 0.6 else "game"
        return make_path(source_kind, self.num_frames, path_seed), path_seed

    def _paths(self, rng: torch.Generator) -> tuple[Tensor, Tensor, str]:
        """``(source_w2c [F, 4, 4], relative [F, 4, 4], what the relative path is)``."""
        source_w2c, _ = self._draw_source_path(rng)
        if float(torch.rand(1, generator=rng)) < EXTREME_ORBIT_SHARE:
            degrees = float(60 + 30 * torch.rand(1, generator=rng))
            degrees *= 1 if float(torch.rand(1, generator=rng)) < 0.5 else -1
            return source_w2c, orbit_path(self.num_frames, degrees), f"orbit_{degrees:+.1f}deg"
        kind = PRESETS[int(torch.randint(len(PRESETS), (1,), generator=rng))]
        return source_w2c, preset_trajectory(kind, self.num_frames), kind


class SpeedRescaledPairs(MultiViewPairs):
    """Geo-Align's training pairs: a walking source (CityWalk's role) and a game-style target
    path (OmniWorld's role) rescaled to sampled per-frame speed maxima (truncated Gaussians,
    Geo-Align eqs. 8-14), relative to the source camera at the same frame. The true target clip
    is rendered along it, so the world still knows the answer the policy is never shown."""

    kind = "speed_pair"
    translation_prior = SpeedPrior(mean=0.06, std=0.03, low=0.01, high=0.12)  # units / frame
    rotation_prior = SpeedPrior(mean=0.03, std=0.015, low=0.005, high=0.06)  # rad / frame

    def _draw_source_path(self, rng: torch.Generator) -> tuple[Tensor, int]:
        path_seed = int(torch.randint(1 << 30, (1,), generator=rng))
        return make_path("walking", self.num_frames, path_seed), path_seed

    def _paths(self, rng: torch.Generator) -> tuple[Tensor, Tensor, str]:
        source_w2c, path_seed = self._draw_source_path(rng)
        game = make_path("game", self.num_frames, path_seed + 1)
        relative, v_t, v_r = sample_speed_rescaled(
            game @ invert_pose(game[0]), self.translation_prior, self.rotation_prior, rng
        )
        return source_w2c, relative, f"game_rescaled_{v_t:.3f}u_{v_r:.3f}rad"


_SOURCE_KEYS = (
    "source_video",
    "source_depth",
    "source_w2c",
    "intrinsics",
    "source_dynamic",
    "caption",
    "scene",
)


def _source_fields(src: Render, scene: Scene) -> dict[str, Any]:
    """The source half of a pair item (:data:`_SOURCE_KEYS`)."""
    return {
        "source_video": src.rgb,
        "source_depth": src.depth,
        "source_w2c": src.w2c,
        "intrinsics": src.intrinsics,
        "source_dynamic": src.dynamic,
        "caption": caption_for(scene),
        "scene": scene.to_json(),
    }


def _pair_fields(
    source: dict[str, Any], tgt: Render, relative: Tensor, relative_kind: str
) -> dict[str, Any]:
    """A pair item from its source half and the target render, keys in the cached order."""
    return {
        "source_video": source["source_video"],
        "source_depth": source["source_depth"],
        "source_w2c": source["source_w2c"],
        "target_video": tgt.rgb,
        "target_depth": tgt.depth,
        "target_w2c": tgt.w2c,
        "relative_w2c": relative,
        "intrinsics": source["intrinsics"],
        "source_dynamic": source["source_dynamic"],
        "target_dynamic": tgt.dynamic,
        "caption": source["caption"],
        "relative_kind": relative_kind,
        "scene": source["scene"],
    }


def build_missing(dataset: _WorldClips, indices: Iterable[int], workers: int = 1) -> int:
    """Render and cache the items of ``indices`` not cached yet, in ``workers`` processes of one
    torch thread each (a clip is a few hundred tensor operations on arrays of a few MB, so
    processes scale where threads do not), on the dataset's ``device`` (the workers share a GPU).
    Items are pure functions of their index, so the order and the number of workers change
    nothing on disk. Returns how many items were rendered."""
    check_int_range("workers", workers, 1)
    if dataset.cache_dir is None:
        raise ValueError("dataset: build_missing writes the cache; give the dataset a cache_dir")
    missing = [i for i in indices if not dataset.is_cached(i)]
    desc = f"render {dataset.split} {dataset.kind}"
    if workers == 1 or len(missing) < 2:
        for i in tqdm(missing, desc=desc, leave=False):
            dataset[i]
        return len(missing)
    # spawn, not fork: a forked child inherits the parent's torch thread pools in any state
    context = multiprocessing.get_context("spawn")
    with context.Pool(
        min(workers, len(missing)), initializer=torch.set_num_threads, initargs=(1,)
    ) as pool:
        jobs = pool.imap_unordered(_render_item, [(dataset, i) for i in missing])
        for _ in tqdm(jobs, total=len(missing), desc=desc, leave=False):
            pass
    return len(missing)


def _render_item(job: tuple[_WorldClips, int]) -> None:
    dataset, index = job
    dataset[index]


def _claim_cache(cache_dir: Path, settings: dict[str, Any]) -> None:
    """Record the settings a cache folder holds; refuse to mix items built with other settings."""
    path = cache_dir / "settings.json"
    if path.exists():
        held = json.loads(path.read_text(encoding="utf-8"))
        if held != settings:
            raise ValueError(
                f"cache_dir: {cache_dir} holds items built with {held}, not {settings}; "
                "use another folder or delete it"
            )
        return
    atomic_write_json(path, settings)


def _cache_path(cache_dir: Path, kind: str, index: int) -> Path:
    return cache_dir / f"{kind}_{index:06d}.safetensors"


def _load_cached(cache_dir: Path | None, kind: str, index: int) -> dict[str, Any] | None:
    if cache_dir is None:
        return None
    path = _cache_path(cache_dir, kind, index)
    return load_item(path) if path.exists() else None


def load_item(path: str | Path) -> dict[str, Any]:
    """An item written by :func:`save_item`: its tensors and its strings."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        item: dict[str, Any] = dict(load_file(str(path)))
    except Exception as err:
        raise ValueError(
            f"cache: {path} is not a readable item ({err}); delete it and it is rendered again"
        ) from None
    item.update(json.loads(meta.get("strings", "{}")))
    return item


def _save_cached(cache_dir: Path | None, kind: str, index: int, item: dict[str, Any]) -> None:
    if cache_dir is not None:
        save_item(_cache_path(cache_dir, kind, index), item)


def save_item(path: str | Path, item: dict[str, Any]) -> None:
    """Write an item's tensors (safetensors) and strings (its metadata), atomically."""
    tensors = {k: v for k, v in item.items() if isinstance(v, Tensor)}
    strings = {k: v for k, v in item.items() if isinstance(v, str)}
    atomic_save_safetensors(path, tensors, metadata={"strings": json.dumps(strings)})
