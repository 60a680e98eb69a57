"""The ``geogrpo`` command line: a thin shell that maps flags onto config dataclasses."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geogrpo import __version__


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One ``--flag`` per dataclass field, with the field's help text and default."""
    for f in dataclasses.fields(cls):
        default = f.default
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} (default: {default})"
        if isinstance(default, bool):
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=help_text,
            )
        elif isinstance(default, tuple):
            kind = type(default[0]) if default else str
            parser.add_argument(
                flag, dest=f.name, type=kind, nargs="+", default=default, help=help_text
            )
        else:
            parser.add_argument(
                flag, dest=f.name, type=type(default), default=default, help=help_text
            )


def config_from_args(cls: type, args: argparse.Namespace) -> Any:
    """Build ``cls`` from parsed flags; its ``__post_init__`` rejects bad values."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _run_toy(args: argparse.Namespace) -> int:
    from geogrpo.toy import ToyGRPOConfig, plot_toy_result, run_toy_grpo
    from geogrpo.train.logging import RunLogger
    from geogrpo.utils.io import atomic_save_safetensors, atomic_write_json

    cfg = config_from_args(ToyGRPOConfig, args)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        print(
            f"error: --out {out} is not empty; pass --overwrite or choose another folder",
            file=sys.stderr,
        )
        return 2
    with RunLogger(out) as logger:
        result = run_toy_grpo(cfg, log=logger.log)
    atomic_write_json(out / "summary.json", result.summary())
    atomic_save_safetensors(out / "model.safetensors", result.model.state_dict())
    plot = plot_toy_result(result, out / "toy_grpo.png")

    print(
        f"\ntoy GRPO on a ring of {cfg.modes} Gaussians, seed {cfg.seed}, "
        f"{cfg.iterations} iterations, {result.seconds:.1f} s"
    )
    print(f"{'metric':<16}{'before':>10}{'after':>10}")
    for key in ("reward", "at_target_mode", "in_support"):
        print(f"{key:<16}{result.before[key]:>10.3f}{result.after[key]:>10.3f}")
    print(
        f"\nwrote {plot}, {out / 'metrics.jsonl'}, {out / 'summary.json'}, "
        f"TensorBoard logs in {out / 'tensorboard'}"
    )
    return 0


def _world_render(args: argparse.Namespace) -> int:
    from geogrpo.camera.io import Trajectory, save_trajectory
    from geogrpo.utils.io import atomic_save_safetensors, atomic_write_text
    from geogrpo.utils.video import write_video
    from geogrpo.world.paths import make_path
    from geogrpo.world.render import render
    from geogrpo.world.scene import Scene, generate_scene

    if args.frames < 1:
        raise ValueError(f"frames: need at least one frame, got {args.frames}")
    scene = (
        Scene.load(args.scene)
        if args.scene
        else generate_scene(args.scene_seed, args.domain, dynamic=args.dynamic)
    )
    w2c = make_path(args.trajectory, max(args.frames, 2), seed=args.path_seed)[: args.frames]
    clip = render(scene, w2c, args.size, args.size)
    out = Path(args.out)
    stem = out.with_suffix("")
    write_video(out, clip.rgb)
    depth_vis = (clip.depth / clip.depth.max().clamp_min(1e-6))[..., None].expand(-1, -1, -1, 3)
    write_video(f"{stem}.depth.mp4", depth_vis)
    atomic_save_safetensors(
        f"{stem}.safetensors",
        {
            "rgb": clip.rgb,
            "depth": clip.depth,
            "object_id": clip.object_id,
            "dynamic": clip.dynamic,
            "w2c": clip.w2c,
            "intrinsics": clip.intrinsics,
            "times": clip.times,
        },
    )
    save_trajectory(
        Trajectory(clip.w2c, clip.intrinsics, image_size=(args.size, args.size), unit="m"),
        f"{stem}.cameras.json",
    )
    atomic_write_text(f"{stem}.scene.json", scene.to_json())
    print(
        f"wrote {out}, {stem}.depth.mp4, {stem}.safetensors (rgb, depth, ids, masks, cameras), "
        f"{stem}.cameras.json, {stem}.scene.json"
    )
    return 0


def _world_build(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from geogrpo.utils.io import atomic_write_json
    from geogrpo.utils.video import write_video
    from geogrpo.world.datasets import MultiViewPairs, TextToVideoClips, build_missing

    cls = TextToVideoClips if args.kind == "t2v" else MultiViewPairs
    out = Path(args.out) / args.split
    data = cls(args.split, args.n, args.frames, args.size, seed=args.seed, cache_dir=out)
    build_missing(data, range(args.n), args.workers)
    captions = {}
    for i in tqdm(range(len(data)), desc=f"build {args.split} ({args.kind})"):
        item = data[i]
        captions[i] = item["caption"]
        if args.mp4:
            key = "video" if args.kind == "t2v" else "target_video"
            write_video(out / f"{args.kind}_{i:06d}.mp4", item[key])
    atomic_write_json(
        out / "index.json",
        {
            "split": args.split,
            "kind": args.kind,
            "n": args.n,
            "frames": args.frames,
            "size": args.size,
            "seed": args.seed,
            "captions": captions,
        },
    )
    print(f"wrote {args.n} {args.kind} items to {out}")
    return 0


def _world_sheet(args: argparse.Namespace) -> int:
    from geogrpo.world.sheet import contact_sheet

    path = contact_sheet(args.out, per_split=args.per_split, size=args.size)
    print(f"wrote {path}")
    return 0


def _load_source(path: Path, need_geometry: bool, estimate_depth: bool = False) -> dict[str, Any]:
    """A source clip: an mp4, or the ``.safetensors`` that ``geogrpo world render`` writes next
    to it (frames, depth and cameras; ``reproj_v2v`` needs the latter two, or estimates them
    with tinygeo when ``estimate_depth``)."""
    from safetensors.torch import load_file

    from geogrpo.utils.video import read_video

    tensors = path.with_suffix(".safetensors")
    if tensors.is_file() and not estimate_depth:
        data = load_file(str(tensors))
        rgb = data["rgb"]
        geometry = {
            "source_depth": data["depth"][None].float(),
            "source_w2c": data["w2c"][None].float(),
            "intrinsics": data["intrinsics"][None].float(),
        }
    elif not path.is_file():
        raise FileNotFoundError(f"source: no file {path}")
    elif need_geometry and not estimate_depth:
        raise ValueError(
            f"source: reproj_v2v needs the depth and cameras of the source; no {tensors} next to "
            f"{path}. Pass a clip written by `geogrpo world render` (it writes that file), or "
            "add --estimate-depth to estimate them with tinygeo"
        )
    else:
        rgb, geometry = read_video(path), {}
        if need_geometry:
            from geogrpo.perception.tinygeo import TinyGeoEstimator

            geometry = TinyGeoEstimator().estimate(rgb[None].float()).as_source_geometry()
    video = rgb.permute(3, 0, 1, 2)[None].float() * 2 - 1  # [1, 3, F, H, W] in [-1, 1]
    return {"source_video": video, **geometry}


def _target_path(spec: str, num_frames: int):
    from geogrpo.camera.io import load_trajectory
    from geogrpo.camera.presets import PRESETS, preset_trajectory

    if spec in PRESETS:
        return preset_trajectory(spec, num_frames).float()
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


def _sample(args: argparse.Namespace) -> int:
    import torch

    from geogrpo.camera.io import Trajectory, save_trajectory
    from geogrpo.models.policy import VideoPolicy
    from geogrpo.train.rollout import generate
    from geogrpo.utils.checks import check_device
    from geogrpo.utils.video import write_video

    device = check_device("device", args.device)
    policy = VideoPolicy.from_pretrained(args.policy).to(device)
    name = policy.conditioning.name
    out = Path(args.out)
    inputs: dict[str, Any] = {}
    if name in ("camera_v2v", "reproj_v2v"):
        if not args.source or not args.trajectory:
            raise ValueError(f"source/trajectory: {name} needs --source clip.mp4 --trajectory PATH")
        inputs = _load_source(Path(args.source), name == "reproj_v2v", args.estimate_depth)
        frames, height, width = inputs["source_video"].shape[2:]
        inputs["cameras"] = _target_path(args.trajectory, frames)[None]
        prompt = args.prompt or "A room."
    else:
        if not args.prompt:
            raise ValueError(f"prompt: {name} needs --prompt 'A room with ... The camera ...'")
        height, width = args.height or args.size, args.width or args.size
        frames, prompt = args.frames, args.prompt
    with torch.no_grad():
        video = generate(
            policy,
            [prompt],
            frames,
            height,
            width,
            steps=args.steps,
            shift=args.shift,
            seed=args.seed,
            progress=True,
            guidance_scale=args.guidance_scale,
            **inputs,
        )
    frames_01 = (video[0].cpu().permute(1, 2, 3, 0) + 1) / 2  # [F, H, W, 3]
    write_video(out, frames_01)
    written = [str(out)]
    cameras = _sampled_cameras(policy, prompt, frames, inputs)
    if cameras is not None:
        from geogrpo.world.render import DEFAULT_FOV_DEG, intrinsics_from_fov

        k = inputs.get("intrinsics")
        k = k[0] if k is not None else intrinsics_from_fov(DEFAULT_FOV_DEG, height, width)
        path = out.with_suffix(".cameras.json")
        save_trajectory(Trajectory(cameras.double(), k.double(), image_size=(height, width)), path)
        written.append(str(path))
    if "source_video" in inputs:
        side = torch.cat([(inputs["source_video"][0].permute(1, 2, 3, 0) + 1) / 2, frames_01], 2)
        write_video(out.with_suffix(".side_by_side.mp4"), side)
        written.append(str(out.with_suffix(".side_by_side.mp4")))
    print("wrote " + ", ".join(written))
    return 0


def _sampled_cameras(policy, prompt: str, frames: int, inputs: dict[str, Any]):
    """The cameras the output was asked to follow: absolute when the source's are known."""
    from geogrpo.camera.keywords import camera_keywords_to_trajectory, camera_text_from_prompt

    if "cameras" in inputs:
        relative = inputs["cameras"][0]
        return relative @ inputs["source_w2c"][0] if "source_w2c" in inputs else relative
    try:
        return camera_keywords_to_trajectory(camera_text_from_prompt(prompt), frames)
    except ValueError:
        return None  # a prompt without camera words asks for no particular path


def _pretrain(args: argparse.Namespace) -> int:
    """Run one pretraining; its module (torch, diffusers, the models) is imported only now."""
    command = args.pretrain_command
    if command == "autoencoder":
        from geogrpo.pretrain.autoencoder import pretrain_autoencoder as run
    elif command == "policy":
        from geogrpo.pretrain.policy import pretrain_policy as run
    elif command == "export":
        from geogrpo.pretrain.policy import export_policy as run
    elif command == "tinygeo":
        from geogrpo.pretrain.tinygeo import pretrain_tinygeo as run
    elif command == "lgm":
        from geogrpo.pretrain.lgm import pretrain_lgm as run
    else:
        from geogrpo.pretrain.quality import pretrain_quality as run
    metrics = run(config_from_args(args.pretrain_config, args))
    print("\n".join(f"{k}: {v}" for k, v in metrics.items()))
    return 0


def _add_pretrain_commands(sub: argparse._SubParsersAction) -> None:
    from geogrpo.pretrain import config

    p = sub.add_parser(
        "pretrain", help="supervised pretraining of the embedded tiny models (autoencoder, DiTs)"
    )
    psub = p.add_subparsers(dest="pretrain_command", metavar="MODEL", required=True)
    for name, cls, help_text in (
        ("autoencoder", config.AutoencoderPretrainConfig, "the embedded frame autoencoder"),
        (
            "policy",
            config.PolicyPretrainConfig,
            "a tiny Wan DiT + text encoder for one conditioning",
        ),
        (
            "export",
            config.PolicyExportConfig,
            "re-save a trained policy for shipping (float16 transformer weights)",
        ),
        (
            "tinygeo",
            config.TinyGeoPretrainConfig,
            "the embedded geometry estimator (cameras, depth)",
        ),
        ("lgm", config.LGMPretrainConfig, "the Latent Geometry Model: tinygeo from VAE latents"),
        (
            "quality",
            config.QualityPretrainConfig,
            "the stand-in quality scorer (ranks clean first)",
        ),
    ):
        command = psub.add_parser(name, help=help_text)
        add_dataclass_arguments(command, cls)
        command.set_defaults(func=_pretrain, pretrain_config=cls)


def _add_world_commands(sub: argparse._SubParsersAction) -> None:
    from geogrpo.world.datasets import SPLITS
    from geogrpo.world.paths import PATH_KINDS
    from geogrpo.world.scene import DOMAINS

    world = sub.add_parser("world", help="the procedural 3D world: render clips, build datasets")
    wsub = world.add_subparsers(dest="world_command", metavar="WORLD_COMMAND", required=True)
    r = wsub.add_parser(
        "render", help="render one clip along a camera path (mp4 + depth + cameras)"
    )
    r.add_argument("--scene-seed", type=int, default=0, help="procedural scene seed (default: 0)")
    r.add_argument("--domain", choices=tuple(DOMAINS), default="procedural", help="scene domain")
    r.add_argument("--scene", default=None, help="a scene JSON file instead of a seed")
    r.add_argument("--dynamic", action="store_true", help="let one or two objects move")
    r.add_argument("--trajectory", choices=PATH_KINDS, default="arc_left", help="camera path")
    r.add_argument("--path-seed", type=int, default=0, help="seed of walking/game/orbit paths")
    r.add_argument("--frames", type=int, default=17, help="number of frames (default: 17)")
    r.add_argument("--size", type=int, default=96, help="image height and width (default: 96)")
    r.add_argument("--out", default="clip.mp4", help="output video path (default: clip.mp4)")
    r.set_defaults(func=_world_render)
    b = wsub.add_parser("build", help="render a dataset split to safetensors (+ mp4 previews)")
    b.add_argument("--split", choices=tuple(SPLITS), default="train", help="dataset split")
    b.add_argument(
        "--kind",
        choices=("t2v", "pairs"),
        default="t2v",
        help="text-to-video clips or multi-view pairs (default: t2v)",
    )
    b.add_argument("--n", type=int, default=100, help="number of items (default: 100)")
    b.add_argument("--frames", type=int, default=17, help="frames per clip (default: 17)")
    b.add_argument("--size", type=int, default=96, help="image size (default: 96)")
    b.add_argument("--seed", type=int, default=0, help="dataset seed (default: 0)")
    b.add_argument("--mp4", action="store_true", help="also write an mp4 per item")
    b.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes rendering in parallel, one torch thread each (default: 1)",
    )
    b.add_argument("--out", default="data", help="output folder (default: data)")
    b.set_defaults(func=_world_build)
    c = wsub.add_parser("contact-sheet", help="PNG with sample clips of every split")
    c.add_argument("--per-split", type=int, default=2, help="clips per split (default: 2)")
    c.add_argument("--size", type=int, default=96, help="image size (default: 96)")
    c.add_argument("--out", default="contact_sheet.png", help="output PNG")
    c.set_defaults(func=_world_sheet)


def build_parser() -> argparse.ArgumentParser:
    """The full parser; kept separate so tests and docs can inspect it."""
    from geogrpo.toy import ToyGRPOConfig

    parser = argparse.ArgumentParser(
        prog="geogrpo",
        description="Post-train video generators with GRPO and 3D-geometry rewards.",
    )
    parser.add_argument("--version", action="version", version=f"geogrpo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="the main job on a laptop CPU (for now: the toy GRPO run with defaults)"
    )
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.set_defaults(
        func=_run_toy,
        overwrite=True,
        **{f.name: f.default for f in dataclasses.fields(ToyGRPOConfig)},
    )

    toy = sub.add_parser("toy-grpo", help="GRPO on a 2D flow-matching toy, with every knob exposed")
    add_dataclass_arguments(toy, ToyGRPOConfig)
    toy.add_argument(
        "--out", default="runs/toy-grpo", help="output folder (default: runs/toy-grpo)"
    )
    toy.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    toy.set_defaults(func=_run_toy)
    _add_world_commands(sub)
    _add_pretrain_commands(sub)
    s = sub.add_parser("sample", help="generate a video with a policy (mp4 + the cameras used)")
    s.add_argument(
        "--policy", default="tiny-t2v", help="shipped name or folder (default: tiny-t2v)"
    )
    s.add_argument("--prompt", default=None, help="text prompt; t2v policies need one")
    s.add_argument("--source", default=None, help="source clip (v2v): mp4 or world-render output")
    s.add_argument("--trajectory", default=None, help="v2v target path: preset or camera file")
    s.add_argument(
        "--estimate-depth",
        action="store_true",
        help="reproj_v2v: estimate the source's depth and cameras with tinygeo (96x96 clips of "
        "the procedural world's look) instead of reading geogrpo world render's .safetensors",
    )
    s.add_argument("--frames", type=int, default=17, help="t2v: frames, 4k + 1 (default: 17)")
    s.add_argument("--size", type=int, default=96, help="t2v: height and width (default: 96)")
    s.add_argument("--height", type=int, default=None, help="t2v: height, overrides --size")
    s.add_argument(
        "--width", type=int, default=None, help="t2v: width, overrides --size (Wan: 832 x 480)"
    )
    s.add_argument("--steps", type=int, default=20, help="ODE steps (default: 20)")
    s.add_argument("--shift", type=float, default=3.0, help="time shift (default: 3.0)")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    s.add_argument(
        "--guidance-scale",
        type=float,
        default=1.0,
        help="classifier-free guidance against the empty prompt; 1 = off (default: 1.0)",
    )
    s.add_argument(
        "--device", default="cpu", help="torch device, e.g. cuda or cuda:1 (default: cpu)"
    )
    s.add_argument("--out", default="sample.mp4", help="output video (default: sample.mp4)")
    s.set_defaults(func=_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``geogrpo`` and ``python -m geogrpo``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
