"""Scenes as data: textured primitives, sky, light and motion, serialisable to JSON.

World frame = the camera frame of a path's first camera at the origin: OpenCV axes (x right,
y down, z forward), so the ground is the plane ``y = +ground_height`` below the eye. Time is in
seconds; clips are rendered at ``FPS`` frames per second unless told otherwise.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from geogrpo.world.textures import PHOTOS, Texture

FPS = 16.0
PRIMITIVE_KINDS = ("plane", "box", "sphere", "cylinder")
MOTION_KINDS = ("static", "linear", "circular")
Vec3 = tuple[float, float, float]


def _vec3(name: str, value: object) -> Vec3:
    try:
        v = tuple(float(x) for x in value)  # type: ignore[union-attr]
    except TypeError as err:
        raise ValueError(f"{name}: expected 3 numbers, got {value!r}") from err
    if len(v) != 3 or not all(math.isfinite(x) for x in v):
        raise ValueError(f"{name}: expected 3 finite numbers, got {value!r}")
    return v  # type: ignore[return-value]


@dataclass(frozen=True)
class Motion:
    """How a primitive moves: not at all, along a line, or on a horizontal circle."""

    kind: str = "static"
    velocity: Vec3 = (0.0, 0.0, 0.0)  # linear: units per second
    radius: float = 0.0  # circular: about the primitive's rest centre, in the x-z plane
    angular_speed: float = 0.0  # circular: radians per second

    def __post_init__(self) -> None:
        if self.kind not in MOTION_KINDS:
            raise ValueError(f"motion.kind: unknown {self.kind!r}; choose one of {MOTION_KINDS}")
        object.__setattr__(self, "velocity", _vec3("motion.velocity", self.velocity))

    def offset(self, time: torch.Tensor) -> torch.Tensor:
        """Displacement ``[T, 3]`` from the rest centre at times ``[T]`` (seconds, any device)."""
        t = time.to(torch.float64)[:, None]
        if self.kind == "linear":
            return t * torch.tensor(self.velocity, dtype=torch.float64, device=t.device)
        if self.kind == "circular":
            a = self.angular_speed * t[:, 0]
            return self.radius * torch.stack([torch.cos(a) - 1, 0 * a, torch.sin(a)], dim=-1)
        return torch.zeros(time.shape[0], 3, dtype=torch.float64, device=t.device)


@dataclass(frozen=True)
class Primitive:
    """A textured shape. ``size``: box half-extents; sphere ``(r, r, r)``; cylinder ``(r, h, r)``
    with half-height ``h`` about a vertical axis. Planes are infinite, through ``center``."""

    kind: str
    center: Vec3
    texture: Texture
    size: Vec3 = (1.0, 1.0, 1.0)
    normal: Vec3 = (0.0, -1.0, 0.0)  # planes only, pointing toward the viewer side
    yaw_deg: float = 0.0  # boxes: rotation about the vertical (y) axis
    motion: Motion = field(default_factory=Motion)

    def __post_init__(self) -> None:
        if self.kind not in PRIMITIVE_KINDS:
            raise ValueError(
                f"kind: unknown primitive {self.kind!r}; choose one of {PRIMITIVE_KINDS}"
            )
        object.__setattr__(self, "center", _vec3("center", self.center))
        object.__setattr__(self, "size", _vec3("size", self.size))
        object.__setattr__(self, "normal", _vec3("normal", self.normal))
        if self.kind != "plane" and min(self.size) <= 0:
            raise ValueError(f"size: {self.kind} extents must be positive, got {self.size}")
        if self.kind == "plane" and math.hypot(*self.normal) < 1e-9:
            raise ValueError("normal: a plane needs a non-zero normal")

    @property
    def dynamic(self) -> bool:
        """Whether the primitive moves."""
        return self.motion.kind != "static"


@dataclass(frozen=True)
class Scene:
    """Everything needed to render: primitives, sky, light, and where it came from."""

    primitives: tuple[Primitive, ...]
    sky_top: Vec3 = (0.45, 0.62, 0.9)
    sky_horizon: Vec3 = (0.85, 0.88, 0.92)
    light_direction: Vec3 = (0.4, 1.0, 0.6)  # direction the light travels (down is +y)
    ambient: float = 0.35
    domain: str = "custom"
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.primitives:
            raise ValueError("primitives: a scene needs at least one primitive")
        for name in ("sky_top", "sky_horizon", "light_direction"):
            object.__setattr__(self, name, _vec3(name, getattr(self, name)))
        if not 0 <= self.ambient <= 1:
            raise ValueError(f"ambient: must be in [0, 1], got {self.ambient}")

    def to_json(self) -> str:
        """Stable, human-readable JSON."""
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Scene:
        """Parse and validate; errors name the field that was wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"scene: not valid JSON ({err})") from err
        if not isinstance(data, dict) or "primitives" not in data:
            raise ValueError("scene: expected an object with a 'primitives' list")
        try:
            prims = tuple(
                Primitive(
                    **{
                        **p,
                        "texture": Texture(
                            **{
                                **p["texture"],
                                "colors": tuple(tuple(c) for c in p["texture"].get("colors", ())),
                            }
                        ),
                        "motion": Motion(**p.get("motion", {})),
                    }
                )
                for p in data["primitives"]
            )
            return cls(**{**data, "primitives": prims})
        except (TypeError, KeyError) as err:
            raise ValueError(f"scene: malformed scene description ({err})") from err

    @classmethod
    def load(cls, path: str | Path) -> Scene:
        """Read a scene JSON file."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"path: no scene file at {p}")
        return cls.from_json(p.read_text(encoding="utf-8"))


# Domains: which texture families and object types a procedural scene may use. The photo
# domain is held out from every training split by construction (see geogrpo.world.splits).
DOMAINS: dict[str, dict[str, tuple[str, ...]]] = {
    "procedural": {"textures": ("checker", "stripes", "noise"), "objects": ("box", "sphere")},
    "heldout_shapes": {"textures": ("gradient", "noise"), "objects": ("cylinder",)},
    "heldout_photo": {"textures": ("photo",), "objects": ("box", "sphere", "cylinder")},
}


def uniform(rng: torch.Generator, lo: float, hi: float) -> float:
    """One draw from U(lo, hi): every random choice of the world goes through a seeded ``rng``."""
    return lo + (hi - lo) * float(torch.rand(1, generator=rng))


def _random_texture(rng: torch.Generator, families: tuple[str, ...], scale: float) -> Texture:
    kind = families[int(torch.randint(len(families), (1,), generator=rng))]
    base = torch.rand(3, generator=rng) * 0.6 + 0.2
    accent = torch.rand(3, generator=rng) * 0.6 + 0.2
    third = (base + accent) / 2 * uniform(rng, 0.5, 1.2)
    colors = tuple(tuple(round(float(v), 4) for v in c.clamp(0, 1)) for c in (base, accent, third))
    seed = int(torch.randint(1 << 30, (1,), generator=rng))
    photo = PHOTOS[seed % len(PHOTOS)] if kind == "photo" else ""
    if kind == "photo":
        scale *= 3.0  # one photo spans several units, not a tile per unit
    return Texture(
        kind=kind,
        colors=colors,
        scale=round(scale * uniform(rng, 0.7, 1.5), 4),
        angle_deg=round(uniform(rng, 0, 180), 2),
        seed=seed,
        photo=photo,
    )


def generate_scene(seed: int, domain: str = "procedural", dynamic: bool = False) -> Scene:
    """A random room: textured ground and walls, 3-6 objects in front of the camera.

    Layout: ground ``y = 1.5`` below the eye, back wall at ``z = 9..13``, side walls at
    ``x = +-(5..7)``; objects stand on the ground 3-9 units ahead. With ``dynamic`` one or two
    objects move (linear or circular). Same seed and domain, same scene.
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain: unknown {domain!r}; choose one of {', '.join(DOMAINS)}")
    rng = torch.Generator().manual_seed(seed * 7919 + sorted(DOMAINS).index(domain))
    families = DOMAINS[domain]["textures"]
    objects = DOMAINS[domain]["objects"]

    ground_y = 1.5
    back = uniform(rng, 9.0, 13.0)
    side = uniform(rng, 5.0, 7.0)
    prims = [
        Primitive(
            "plane", (0, ground_y, 0), _random_texture(rng, families, 1.2), normal=(0, -1, 0)
        ),
        Primitive("plane", (0, 0, back), _random_texture(rng, families, 1.6), normal=(0, 0, -1)),
        Primitive("plane", (-side, 0, 0), _random_texture(rng, families, 1.4), normal=(1, 0, 0)),
        Primitive("plane", (side, 0, 0), _random_texture(rng, families, 1.4), normal=(-1, 0, 0)),
    ]
    n_objects = int(torch.randint(3, 7, (1,), generator=rng))
    n_moving = int(torch.randint(1, 3, (1,), generator=rng)) if dynamic else 0
    for i in range(n_objects):
        kind = objects[int(torch.randint(len(objects), (1,), generator=rng))]
        x, z = uniform(rng, -3.0, 3.0), uniform(rng, 3.5, 9.0)
        motion = Motion()
        if i < n_moving:
            if float(torch.rand(1, generator=rng)) < 0.5:
                motion = Motion("linear", (uniform(rng, -0.8, 0.8), 0.0, uniform(rng, -0.4, 0.4)))
            else:
                motion = Motion(
                    "circular", radius=uniform(rng, 0.4, 1.0), angular_speed=uniform(rng, 0.8, 2.0)
                )
        if kind == "box":
            half = (uniform(rng, 0.3, 0.9), uniform(rng, 0.3, 1.2), uniform(rng, 0.3, 0.9))
            prim = Primitive(
                "box",
                (x, ground_y - half[1], z),
                _random_texture(rng, families, 0.6),
                size=half,
                yaw_deg=uniform(rng, 0, 90),
                motion=motion,
            )
        elif kind == "sphere":
            r = uniform(rng, 0.3, 0.9)
            prim = Primitive(
                "sphere",
                (x, ground_y - r, z),
                _random_texture(rng, families, 0.5),
                size=(r, r, r),
                motion=motion,
            )
        else:
            r, h = uniform(rng, 0.25, 0.7), uniform(rng, 0.4, 1.3)
            prim = Primitive(
                "cylinder",
                (x, ground_y - h, z),
                _random_texture(rng, families, 0.6),
                size=(r, h, r),
                motion=motion,
            )
        prims.append(prim)
    light = (uniform(rng, -0.6, 0.6), 1.0, uniform(rng, 0.2, 0.9))
    return Scene(
        tuple(prims),
        light_direction=light,
        ambient=round(uniform(rng, 0.3, 0.45), 3),
        domain=domain,
        seed=seed,
    )
