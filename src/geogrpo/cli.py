"""The ``geogrpo`` command line: a thin shell that maps flags onto config dataclasses."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
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


class _LazyParser(argparse.ArgumentParser):
    """A subcommand parser that adds its flags when first used (to parse or to print help), so
    that building the parser imports nothing heavy: the toy's config and the world's names
    import torch, and ``geogrpo --help`` or a mistyped flag need neither."""

    def __init__(
        self,
        *args: Any,
        add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._add_arguments = add_arguments

    def _complete(self) -> None:
        if self._add_arguments is not None:
            add, self._add_arguments = self._add_arguments, None
            add(self)

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._complete()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._complete()
        return super().format_usage()

    def format_help(self) -> str:
        self._complete()
        return super().format_help()


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
    _out_dir(out)
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
    from geogrpo.utils.io import atomic_write_text
    from geogrpo.world.paths import PATH_KINDS, make_path
    from geogrpo.world.render import render

    _check_counts(args, size=1, frames=1)
    _out_file(args.out)
    if args.trajectory not in PATH_KINDS:
        return _world_render_pair(args)
    for flag in ("split", "index", "source_path"):
        if getattr(args, flag) is not None:
            raise ValueError(
                f"--{flag.replace('_', '-')}: only with a trajectory file (--trajectory "
                f"FILE[:NAME]), not with the path kind {args.trajectory!r}"
            )
    frames = 17 if args.frames is None else args.frames
    scene = _world_scene(args)
    w2c = make_path(args.trajectory, max(frames, 2), seed=args.path_seed)[:frames]
    out = Path(args.out)
    stem = out.with_suffix("")
    _write_world_clip(out, render(scene, w2c, args.size, args.size), args.size)
    atomic_write_text(f"{stem}.scene.json", scene.to_json())
    print(
        f"wrote {out}, {stem}.depth.mp4, {stem}.safetensors (rgb, depth, ids, masks, cameras), "
        f"{stem}.cameras.json, {stem}.scene.json"
    )
    return 0


def _world_render_pair(args: argparse.Namespace) -> int:
    """``world render --trajectory FILE[:NAME]``: a source clip and the true clip along the
    user's path relative to it (the scene's own source path, or held-out pair ``--index``)."""
    import torch

    from geogrpo.camera.io import Trajectory, save_trajectory
    from geogrpo.utils.checks import check_int_range
    from geogrpo.utils.io import atomic_write_text
    from geogrpo.utils.video import write_video
    from geogrpo.world.datasets import SCENES_PER_SPLIT, MultiViewPairs
    from geogrpo.world.paths import make_path
    from geogrpo.world.render import render

    name, relative = _world_target_path(args.trajectory)
    frames = relative.shape[0]
    if args.frames is not None and args.frames != frames:
        raise ValueError(
            f"frames: --frames {args.frames}, but path {name!r} has {frames} frames; leave "
            "--frames out to render the path's"
        )
    if (args.split is None) != (args.index is None):
        raise ValueError("split/index: give both --split S and --index I, or neither")
    if args.split is not None:
        if args.scene is not None or args.source_path is not None:
            raise ValueError(
                "--scene/--source-path: with --split and --index the data set gives the scene "
                "and the source path"
            )
        check_int_range("index", args.index, 0, SCENES_PER_SPLIT - 1)
        pairs = MultiViewPairs(args.split, args.index + 1, frames, args.size, args.seed)
        scene, source_w2c = pairs.source_path(args.index)
    else:
        scene = _world_scene(args)
        source_w2c = make_path(args.source_path or "walking", frames, seed=args.path_seed)
    source = render(scene, source_w2c, args.size, args.size)
    target = render(scene, relative @ source_w2c, args.size, args.size)
    out = Path(args.out)
    stem = out.with_suffix("")
    _write_world_clip(out, target, args.size)
    _write_world_clip(Path(f"{stem}.source{out.suffix}"), source, args.size)
    write_video(f"{stem}.side_by_side.mp4", torch.cat([source.rgb, target.rgb], dim=2))
    save_trajectory(Trajectory(relative), f"{stem}.relative.json")
    atomic_write_text(f"{stem}.scene.json", scene.to_json())
    print(
        f"path {name!r}: wrote {out} (the true target), {stem}.source{out.suffix}, "
        f"{stem}.side_by_side.mp4 (source | target), depth videos, .safetensors and "
        f".cameras.json of both, {stem}.relative.json, {stem}.scene.json"
    )
    return 0


def _check_counts(args: argparse.Namespace, **lowest: int) -> None:
    """Integer options checked before any work: ``--flag`` must be >= its lowest value (an
    option left unset, None, is not checked)."""
    from geogrpo.utils.checks import check_int_range

    for name, low in lowest.items():
        if getattr(args, name) is not None:
            check_int_range("--" + name.replace("_", "-"), getattr(args, name), low)


def _world_scene(args: argparse.Namespace):
    from geogrpo.world.scene import Scene, generate_scene

    if args.scene:
        return Scene.load(args.scene)
    return generate_scene(args.scene_seed, args.domain, dynamic=args.dynamic)


def _world_target_path(spec: str):
    """``(name, relative w2c [F, 4, 4])`` of ``--trajectory FILE`` (one path) or ``FILE:NAME``."""
    from geogrpo.camera.io import load_target_paths
    from geogrpo.world.paths import PATH_KINDS

    file, name = spec, None
    if not Path(spec).is_file() and ":" in spec:
        file, name = spec.rsplit(":", 1)
    if not Path(file).is_file():
        raise ValueError(
            f"trajectory: {spec!r} is neither a path kind ({', '.join(PATH_KINDS)}) nor a "
            "target-paths file, FILE or FILE:NAME (see docs/CAMERAS.md)"
        )
    paths = load_target_paths(file)
    if name is None:
        if len(paths) != 1:
            raise ValueError(
                f"trajectory: {file} holds {len(paths)} paths ({', '.join(paths)}); pick one "
                f"with --trajectory {file}:NAME"
            )
        name = next(iter(paths))
    elif name not in paths:
        raise ValueError(f"trajectory: {file} has no path {name!r}; it has {', '.join(paths)}")
    return name, paths[name]


def _write_world_clip(out: Path, clip, size: int) -> None:
    """``out`` (the video), ``<stem>.depth.mp4``, ``<stem>.safetensors`` (rgb, depth, ids,
    masks, cameras: what ``geogrpo sample --source`` reads) and ``<stem>.cameras.json``."""
    from geogrpo.camera.io import Trajectory, save_trajectory
    from geogrpo.utils.io import atomic_save_safetensors
    from geogrpo.utils.video import write_video

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
        Trajectory(clip.w2c, clip.intrinsics, image_size=(size, size), unit="m"),
        f"{stem}.cameras.json",
    )


def _world_build(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from geogrpo.utils.io import atomic_write_json
    from geogrpo.utils.video import write_video
    from geogrpo.world.datasets import MultiViewPairs, TextToVideoClips, build_missing

    _check_counts(args, n=1, frames=1, size=1, workers=1)
    _out_dir(Path(args.out) / args.kind / args.split)
    cls = TextToVideoClips if args.kind == "t2v" else MultiViewPairs
    # the layout `geogrpo pretrain` and `geogrpo train` read: <out>/t2v/<split>, <out>/pairs/<split>
    out = Path(args.out) / args.kind / args.split
    data = cls(
        args.split,
        args.n,
        args.frames,
        args.size,
        seed=args.seed,
        cache_dir=out,
        device=args.device,
    )
    build_missing(data, range(1), 1)
    per_item = sum(p.stat().st_size for p in out.glob(f"{data.kind}_000000.safetensors"))
    print(
        f"{args.n} {args.kind} items of {per_item / 1e6:.1f} MB each: about "
        f"{args.n * per_item / 1e9:.2f} GB in {out}"
    )
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

    _check_counts(args, per_split=1, size=1)
    _out_file(args.out)
    path = contact_sheet(args.out, per_split=args.per_split, size=args.size)
    print(f"wrote {path}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    import torch

    from geogrpo.camera.io import Trajectory, save_trajectory
    from geogrpo.models.conditioning import ConditionInputs
    from geogrpo.models.policy import VideoPolicy
    from geogrpo.train.conditions import from_user_clip
    from geogrpo.train.rollout import generate
    from geogrpo.utils.checks import check_device
    from geogrpo.utils.video import model_to_frames, write_video

    device = check_device("device", args.device)
    _check_sample_numbers(args)
    out = _out_file(args.out)  # before any model loads: a bad --out fails at once
    if args.checkpoint or (Path(args.policy) / "checkpoints").is_dir():
        from geogrpo.train.trainer import policy_from_run

        policy = policy_from_run(args.checkpoint or args.policy).to(device)
    else:
        policy = VideoPolicy.from_pretrained(args.policy).to(device)
    name = policy.conditioning.name
    guidance = None
    if args.guidance_reward:
        from geogrpo.recipes.build import build_guidance_reward
        from geogrpo.train.rollout import RewardGuidance

        guidance = RewardGuidance(
            build_guidance_reward(args.guidance_reward),
            args.guidance_step_size,
            args.guidance_every,
        )
    cond = None
    if name in ("camera_v2v", "reproj_v2v"):
        if not args.source or not args.trajectory:
            raise ValueError(f"source/trajectory: {name} needs --source clip.mp4 --trajectory PATH")
        cond = from_user_clip(
            args.source, args.trajectory, name, args.prompt or "A room.", args.estimate_depth
        )
        inputs, prompt = cond.inputs, cond.prompts[0]
        frames, (height, width) = inputs.num_frames, inputs.image_size
    else:
        if not args.prompt:
            raise ValueError(f"prompt: {name} needs --prompt 'A room with ... The camera ...'")
        height = args.height if args.height is not None else args.size
        width = args.width if args.width is not None else args.size
        frames, prompt, inputs = args.frames, args.prompt, ConditionInputs()
    with torch.no_grad():
        video = generate(
            policy,
            [prompt],
            frames,
            height,
            width,
            num_inference_steps=args.steps,
            shift=args.shift,
            seed=args.seed,
            progress=True,
            guidance_scale=args.guidance_scale,
            inputs=inputs,
            reward_guidance=guidance,
        )
    if guidance is not None and guidance.history:
        print(
            f"{args.guidance_reward} of the clean prediction before each nudge: "
            + " -> ".join(f"{r:.4f}" for r in guidance.history)
        )
    frames_01 = model_to_frames(video.cpu())[0]  # [F, H, W, 3]
    write_video(out, frames_01)
    written = [str(out)]
    cameras = cond.target_w2c[0] if cond is not None else _caption_cameras(prompt, frames)
    if cameras is not None:
        from geogrpo.world.render import DEFAULT_FOV_DEG, intrinsics_from_fov

        k = inputs.intrinsics
        k = k[0] if k is not None else intrinsics_from_fov(DEFAULT_FOV_DEG, height, width)
        path = out.with_suffix(".cameras.json")
        save_trajectory(Trajectory(cameras.double(), k.double(), image_size=(height, width)), path)
        written.append(str(path))
    if cond is not None:
        side = torch.cat([cond.source_frames[0], frames_01], 2)
        write_video(out.with_suffix(".side_by_side.mp4"), side)
        written.append(str(out.with_suffix(".side_by_side.mp4")))
    print("wrote " + ", ".join(written))
    return 0


def _check_sample_numbers(args: argparse.Namespace) -> None:
    """Every number of ``geogrpo sample`` checked before a model loads; a size the policy
    cannot divide is caught by ``generate`` before it samples."""
    from geogrpo.utils.checks import check_int_range, check_positive

    _check_counts(args, frames=1, size=1, height=1, width=1, steps=1, guidance_every=1)
    if (args.frames - 1) % 4:
        lower = args.frames - (args.frames - 1) % 4
        raise ValueError(
            f"--frames: {args.frames}; Wan models take 4k + 1 (e.g. {lower} or {lower + 4})"
        )
    check_positive("--shift", args.shift)
    check_positive("--guidance-scale", args.guidance_scale, allow_zero=True)
    check_positive("--guidance-step-size", args.guidance_step_size)
    check_int_range("--seed", args.seed, 0, 2**63 - 1)


def _caption_cameras(prompt: str, frames: int):
    """The cameras a t2v prompt's camera words ask for (None without camera words)."""
    from geogrpo.camera.keywords import camera_keywords_to_trajectory, camera_text_from_prompt

    try:
        return camera_keywords_to_trajectory(camera_text_from_prompt(prompt), frames)
    except ValueError:
        return None  # a prompt without camera words asks for no particular path


def _train_config(args: argparse.Namespace):
    from geogrpo.train.config import load_config

    return load_config(args.recipe, args.scale, args.config, args.set or [])


def _train(args: argparse.Namespace) -> int:
    from geogrpo.train.checkpoint import RunStopped
    from geogrpo.train.distributed import close_distributed
    from geogrpo.train.trainer import GRPOTrainer

    config = _train_config(args)
    out = Path(args.out)
    if args.resume is None and out.exists() and any(out.iterdir()):
        raise ValueError(
            f"--out: {out} is not empty; pass --resume auto to continue that run, or choose "
            "another folder"
        )
    from geogrpo.recipes.preflight import check_full_scale_files

    check_full_scale_files(config)  # missing weights leave no empty --out behind
    _out_dir(out)
    try:
        trainer = GRPOTrainer(config, out, resume=args.resume)
        summary = trainer.train()
    except RunStopped as err:  # a fault it must not go past; resumable from its checkpoint
        print(f"stopped: {err}", file=sys.stderr)
        return 3
    finally:
        close_distributed()
    if trainer.ctx.is_main:
        _print_summary(config.recipe, out, summary)
    return 0


SUITE_RECIPES = {
    "camera_v2v": "geo_align",
    "extreme_view": "devis_grpo",
    "world_consistency": "vggrpo",
    "t2v_camera": "world_r1",
}


def _eval(args: argparse.Namespace) -> int:
    from geogrpo.train.config import load_config

    if args.compare:
        return _eval_compare(args)
    if not args.suite:
        raise ValueError("--suite: name a suite (or pass --compare A B)")
    _check_counts(args, n=1, videos=0, num_inference_steps=1)
    if args.group is not None and args.group < 2:
        raise ValueError(f"--group: a group needs at least 2 samples, got {args.group}")
    _out_dir(args.out)
    config_file = args.config
    run_config = Path(args.policy or "") / "config.yaml"
    if args.recipe is None and config_file is None and args.policy and run_config.is_file():
        config_file = str(run_config)
    recipe = args.recipe or SUITE_RECIPES.get(args.suite)
    if recipe is None and config_file is None:
        raise ValueError(
            "--recipe: name the recipe whose sampler, rewards and estimator to use (e.g. "
            "--recipe geo_align), or pass a run folder as --policy"
        )
    if config_file is not None:
        recipe = args.recipe  # the run folder's config.yaml holds the recipe
    config = load_config(recipe, args.scale, config_file, args.set or [])
    if args.suite != "reward-fidelity":
        return _eval_suite(args, config)
    from geogrpo.eval.suites import RewardFidelitySettings, parse_reward, run_reward_fidelity

    splits = args.split or ["val"]
    if len(splits) > 1:
        raise ValueError("--split: reward-fidelity measures one split at a time")
    settings = RewardFidelitySettings(
        policy=args.policy,
        rewards=[parse_reward(r) for r in args.reward or []],
        split=splits[0],
        conditions=args.n,
        group_size=args.group,
        noise_level=args.noise_level,
        sde_kind=args.sde_kind,
        num_inference_steps=args.num_inference_steps,
        plan=args.plan,
        seed=args.seed,
        full_truth=not args.fast_truth,
    )
    summary = run_reward_fidelity(config, settings, args.out)
    print((Path(args.out) / "table.md").read_text(encoding="utf-8"))
    print(f"per-sample scores: {Path(args.out) / 'samples.jsonl'}")
    return 0 if summary["table"] else 1


def _eval_suite(args: argparse.Namespace, config) -> int:
    from geogrpo.eval.suites import HELD_OUT_SPLITS, SuiteSettings, run_suite

    settings = SuiteSettings(
        suite=args.suite,
        policy=args.policy,
        splits=tuple(args.split or HELD_OUT_SPLITS),
        scenes=args.n,
        trajectories=args.trajectories,
        paths=tuple(args.paths or ()),
        num_inference_steps=args.num_inference_steps,
        seed=args.seed,
        videos=args.videos,
        second_opinion=args.second_opinion,
    )
    run_suite(config, settings, args.out)
    print((Path(args.out) / "table.md").read_text(encoding="utf-8"))
    out = Path(args.out)
    print(f"wrote {out / 'summary.json'}, per-sample metrics in {out / 'samples.jsonl'}")
    return 0


def _eval_compare(args: argparse.Namespace) -> int:
    from geogrpo.eval.compare import compare_evaluations

    _out_dir(args.out)
    a, b = args.compare
    compare_evaluations(a, b, args.out, seed=args.seed)
    print((Path(args.out) / "table.md").read_text(encoding="utf-8"))
    out = Path(args.out)
    print(f"wrote {out / 'compare.json'} and side-by-side videos in {out / 'videos'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from geogrpo.eval.report import build_report

    _out_file(args.out)
    print(build_report(args.dir, args.out))
    return 0


def _print_summary(recipe: str, out: Path, summary: dict[str, Any]) -> None:
    changes = summary.get("changes", {})
    if changes:
        print(
            f"\n{recipe}: base (step 0) vs trained (step {summary['trained_step']}) on fixed "
            "conditions"
        )
        print(f"{'metric':<34}{'before':>10}{'after':>10}{'change':>10}  {'95% CI':<20}{'rose':>6}")
        for key, c in changes.items():
            if not c.get("n"):
                continue
            ci = f"[{c['ci95_low']:+.4f}, {c['ci95_high']:+.4f}]"
            print(
                f"{key:<34}{c['before']:>10.4f}{c['after']:>10.4f}{c['change']:>+10.4f}  "
                f"{ci:<20}{c['rose']:>3}/{c['n']}"
            )
    print(
        f"\nwrote {out / 'metrics.jsonl'}, {out / 'summary.json'}, {out / 'curves.png'}, "
        f"videos in {out / 'videos'}, checkpoints in {out / 'checkpoints'}, TensorBoard logs in "
        f"{out / 'tensorboard'}"
    )


def _config_show(args: argparse.Namespace) -> int:
    from geogrpo.train.config import config_to_yaml

    print(config_to_yaml(_train_config(args), with_help=not args.no_help), end="")
    return 0


def _plan(args: argparse.Namespace) -> int:
    from geogrpo.train.plan import format_plan, plan_runs

    try:
        gpus = [int(g) for g in args.gpus.split(",") if g.strip()]
    except ValueError:
        raise ValueError(f"--gpus: expected counts like 8 or 1,8,64, got {args.gpus!r}") from None
    config = _train_config(args)
    shape, plans = plan_runs(config, gpus, args.conditioning)
    print(format_plan(config, shape, plans), end="")
    return 0


DEMO_RECIPE = "camera_fidelity"
DEMO_STEPS = 20


def _demo(args: argparse.Namespace) -> int:
    from geogrpo.train.config import load_config
    from geogrpo.train.trainer import GRPOTrainer

    _check_counts(args, steps=1)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ValueError(
            f"--out: {out} is not empty; pass --overwrite to replace the demo run there, or "
            "choose another folder"
        )
    if out.exists() and args.overwrite:
        import shutil

        shutil.rmtree(out)
    _out_dir(out)
    config = load_config(DEMO_RECIPE, overrides=[f"steps={args.steps}", *DEMO_SETTINGS])
    print(
        f"geogrpo demo: GRPO post-training of {config.model.policy} with the {DEMO_RECIPE} "
        f"recipe, {config.steps} steps on the CPU; base and trained are evaluated on "
        f"{config.eval.val_conditions} held-out val conditions against the true target videos"
    )
    summary = GRPOTrainer(config, out).train()
    _print_summary(DEMO_RECIPE, out, summary)
    from geogrpo.eval.report import build_report

    report = build_report(out, out / "report.html")
    print(f"\nreport (tables, reward and truth curves, videos): {report}")
    return 0


# The demo's budget: 12 min 5 s on 2 cores from an empty data folder (README).
DEMO_SETTINGS = ("eval.every=0", "checkpoint.every=0")


def _add_train_commands(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--recipe",
            default=None,
            help="recipe name (geo_align, devis_grpo, vggrpo, world_r1, overfit) or a YAML file",
        )
        p.add_argument(
            "--scale",
            choices=("embedded", "full"),
            default="embedded",
            help="embedded: shipped tiny models on the CPU (default); full: local Wan2.1 weights",
        )
        p.add_argument("--config", default=None, help="a YAML file applied over the recipe")
        p.add_argument(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            help="override one field, e.g. --set rl.kl_beta=0.004 (repeatable)",
        )

    t = sub.add_parser("train", help="post-train a policy with GRPO (a recipe + overrides)")
    common(t)
    t.add_argument("--out", required=True, help="run folder (logs, videos, checkpoints)")
    t.add_argument(
        "--resume", default=None, help="auto (newest checkpoint in --out) or a checkpoint folder"
    )
    _add_verify_flag(t)
    t.set_defaults(func=_train)
    e = sub.add_parser(
        "eval",
        help="evaluation suites on held-out conditions against the ground truth (camera_v2v, "
        "extreme_view, world_consistency, t2v_camera; reward-fidelity: does a reward rank a "
        "group's samples like the truth?), or --compare A B",
    )
    common(e)
    e.add_argument(
        "--suite",
        choices=(*SUITE_RECIPES, "reward-fidelity"),
        default=None,
        help="what to measure (the recipe defaults to the suite's method: "
        + ", ".join(f"{k} -> {v}" for k, v in SUITE_RECIPES.items())
        + ")",
    )
    e.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        default=None,
        help="paired comparison of two --suite output folders (B - A per condition)",
    )
    e.add_argument(
        "--trajectories",
        default=None,
        help="camera_v2v: a JSON file mapping names to target paths relative to the source "
        "camera (our trajectory object or a list of F 4x4 world-to-camera matrices), evaluated "
        "beside the ten presets",
    )
    e.add_argument(
        "--paths",
        nargs="+",
        default=None,
        help="v2v suites: evaluate only these paths (presets, orbit names or --trajectories "
        "names; default: all)",
    )
    e.add_argument(
        "--videos",
        type=int,
        default=2,
        help="suites: conditions per split whose clips and cameras are written (default: 2)",
    )
    e.add_argument(
        "--second-opinion",
        default=None,
        help="suites: the estimator of the paper-style camera errors (default: one the recipe's "
        "rewards do not use)",
    )
    e.add_argument(
        "--policy",
        default=None,
        help="shipped name, saved policy folder or `geogrpo train` run folder (default: the "
        "recipe's policy; a run folder also supplies the recipe); suites also take 'truth': "
        "the world's true outputs, each metric's ceiling and the estimators' own error",
    )
    e.add_argument(
        "--reward",
        action="append",
        metavar="NAME[:JSON]",
        help="a reward to measure, with options as JSON, e.g. "
        "'view_fidelity:{\"weights\": [1, 1, 0, 0]}' (repeatable; default: the recipe's)",
    )
    e.add_argument(
        "--split",
        action="append",
        default=None,
        help="held-out split, repeatable (default: suites all of val, heldout_shapes, "
        "heldout_photo; reward-fidelity val)",
    )
    e.add_argument(
        "--n",
        type=int,
        default=2,
        help="per split: scenes (v2v suites, x their paths), captions (t2v suites) or groups "
        "(reward-fidelity) (default: 2)",
    )
    e.add_argument("--group", type=int, default=None, help="G (default: the recipe's)")
    e.add_argument(
        "--noise-level", type=float, default=None, help="SDE noise level (default: the recipe's)"
    )
    e.add_argument(
        "--sde-kind", default=None, help="flow_grpo, dance_grpo or cps (default: the recipe's)"
    )
    e.add_argument(
        "--num-inference-steps", type=int, default=None, help="steps (default: the recipe's)"
    )
    e.add_argument(
        "--plan",
        default=None,
        help="which steps are stochastic: full, or window:START[:SIZE] (default: the recipe's "
        "plan at its first iteration)",
    )
    e.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    e.add_argument(
        "--fast-truth",
        action="store_true",
        help="only PSNR/SSIM (v2v) as truth: skip the perceptual distance and the evaluator",
    )
    e.add_argument(
        "--out", required=True, help="output folder (samples.jsonl, summary.json, table.md)"
    )
    _add_verify_flag(e)
    e.set_defaults(func=_eval)
    c = sub.add_parser("config", help="inspect configs")
    csub = c.add_subparsers(dest="config_command", metavar="CONFIG_COMMAND", required=True)
    show = csub.add_parser("show", help="print the resolved config with every field's help")
    common(show)
    show.add_argument("--no-help", action="store_true", help="print values only")
    show.set_defaults(func=_config_show)
    pl = sub.add_parser(
        "plan",
        help="memory per GPU and seconds per GRPO step of a recipe on Wan2.1 (e.g. --scale full "
        "--gpus 8), computed from the model's shapes; nothing is loaded",
    )
    common(pl)
    pl.add_argument(
        "--gpus", default="1,8,64", help="GPU counts, one or a comma list (default: 1,8,64)"
    )
    pl.add_argument(
        "--conditioning",
        default=None,
        help="size this conditioning (t2v, camera_v2v, reproj_v2v, ...) instead of the policy's "
        "(default: the policy folder's, else what data.kind conditions)",
    )
    pl.set_defaults(func=_plan)


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
    cfg = config_from_args(args.pretrain_config, args)
    if command == "export":  # the shipped folder is refused before anything is created there
        from geogrpo.pretrain.common import shipped_folder

        if shipped_folder(cfg.out) is not None and not cfg.overwrite_shipped:
            return run(cfg)  # raises, naming --overwrite-shipped
    _out_dir(cfg.out)
    metrics = run(cfg)
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
        _add_verify_flag(command)
        command.set_defaults(func=_pretrain, pretrain_config=cls)


def _add_world_commands(sub: argparse._SubParsersAction) -> None:
    sub.add_parser(
        "world",
        help="the procedural 3D world: render clips, build datasets",
        add_arguments=_add_world_arguments,
    )


def _add_world_arguments(world: argparse.ArgumentParser) -> None:
    from geogrpo.world.datasets import SPLITS
    from geogrpo.world.paths import PATH_KINDS
    from geogrpo.world.scene import DOMAINS

    wsub = world.add_subparsers(dest="world_command", metavar="WORLD_COMMAND", required=True)
    r = wsub.add_parser(
        "render",
        help="render one clip along a camera path (mp4 + depth + cameras), or a source clip "
        "and the true target along your own relative path",
    )
    r.add_argument("--scene-seed", type=int, default=0, help="procedural scene seed (default: 0)")
    r.add_argument("--domain", choices=tuple(DOMAINS), default="procedural", help="scene domain")
    r.add_argument("--scene", default=None, help="a scene JSON file instead of a seed")
    r.add_argument("--dynamic", action="store_true", help="let one or two objects move")
    r.add_argument(
        "--trajectory",
        default="arc_left",
        help=f"camera path: one of {', '.join(PATH_KINDS)} (default: arc_left); or a "
        "target-paths file FILE[:NAME] (docs/CAMERAS.md; NAME picks one of several paths): "
        "renders the source clip and, as --out, the true target clip along that path relative "
        "to the source camera, plus .source.mp4 and .side_by_side.mp4",
    )
    r.add_argument(
        "--source-path",
        choices=("walking", "game"),
        default=None,
        help="with a trajectory file: the source camera's path (default: walking)",
    )
    r.add_argument("--path-seed", type=int, default=0, help="seed of walking/game/orbit paths")
    r.add_argument(
        "--split",
        choices=tuple(SPLITS),
        default=None,
        help="with a trajectory file and --index: render multi-view pair item I of this split "
        "(its scene and source clip) along the path, as `geogrpo eval --trajectories` does",
    )
    r.add_argument("--index", type=int, default=None, help="pair item of --split")
    r.add_argument("--seed", type=int, default=0, help="data set seed with --split (default: 0)")
    r.add_argument(
        "--frames",
        type=int,
        default=None,
        help="number of frames (default: 17; with a trajectory file, the path's)",
    )
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
    b.add_argument(
        "--device",
        default="cpu",
        help="where the workers render: cpu or cuda (they share the GPU; items are the CPU's up "
        "to float rounding) (default: cpu)",
    )
    b.add_argument("--out", default="data", help="output folder (default: data)")
    b.set_defaults(func=_world_build)
    c = wsub.add_parser("contact-sheet", help="PNG with sample clips of every split")
    c.add_argument("--per-split", type=int, default=2, help="clips per split (default: 2)")
    c.add_argument("--size", type=int, default=96, help="image size (default: 96)")
    c.add_argument("--out", default="contact_sheet.png", help="output PNG")
    c.set_defaults(func=_world_sheet)


def _add_toy_arguments(toy: argparse.ArgumentParser) -> None:
    from geogrpo.toy import ToyGRPOConfig

    add_dataclass_arguments(toy, ToyGRPOConfig)
    toy.add_argument(
        "--out", default="runs/toy-grpo", help="output folder (default: runs/toy-grpo)"
    )
    toy.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    toy.set_defaults(func=_run_toy)


def _add_verify_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-verify-weights",
        action="store_true",
        help="load models and checkpoints without checking each weight file's sha256 against "
        "its folder's manifest.json (only for weights you changed yourself)",
    )


def _out_dir(path: str | Path) -> Path:
    """An output folder, created and checked writable before any work (a clear error if not)."""
    from geogrpo.utils.integrity import check_output_dir

    return check_output_dir(path)


def _out_file(path: str | Path) -> Path:
    """An output file whose folder is created and checked writable before any work."""
    from geogrpo.utils.integrity import check_output_file

    return check_output_file(path)


def build_parser() -> argparse.ArgumentParser:
    """The full parser; kept separate so tests and docs can inspect it (the flags of ``world``
    and ``toy-grpo`` are added when those are first parsed or print their help)."""
    parser = argparse.ArgumentParser(
        prog="geogrpo",
        description="Post-train video generators with GRPO and 3D-geometry rewards.",
    )
    parser.add_argument("--version", action="version", version=f"geogrpo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_LazyParser)

    demo = sub.add_parser(
        "demo",
        help=f"the main job on a laptop CPU: GRPO post-training of a tiny video model "
        f"({DEMO_RECIPE}), base vs trained against the ground truth",
    )
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.add_argument(
        "--steps", type=int, default=DEMO_STEPS, help=f"GRPO steps (default: {DEMO_STEPS})"
    )
    demo.add_argument(
        "--overwrite", action="store_true", help="replace an earlier demo run in --out"
    )
    _add_verify_flag(demo)
    demo.set_defaults(func=_demo)
    _add_train_commands(sub)

    sub.add_parser(
        "toy-grpo",
        help="GRPO on a 2D flow-matching toy, with every knob exposed",
        add_arguments=_add_toy_arguments,
    )
    _add_world_commands(sub)
    _add_pretrain_commands(sub)
    s = sub.add_parser("sample", help="generate a video with a policy (mp4 + the cameras used)")
    s.add_argument(
        "--policy",
        default="tiny-t2v",
        help="shipped name, saved policy folder, or a `geogrpo train` run folder (its newest "
        "checkpoint) (default: tiny-t2v)",
    )
    s.add_argument(
        "--checkpoint", default=None, help="a GRPO checkpoint folder (overrides --policy)"
    )
    s.add_argument("--prompt", default=None, help="text prompt; t2v policies need one")
    s.add_argument("--source", default=None, help="source clip (v2v): mp4 or world-render output")
    s.add_argument(
        "--trajectory",
        default=None,
        help="v2v target path: a preset name or a trajectory file (our JSON, see docs/CAMERAS.md)",
    )
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
    s.add_argument(
        "--num-inference-steps",
        "--steps",
        dest="steps",
        type=int,
        default=20,
        help="ODE steps, as diffusers names them (default: 20)",
    )
    s.add_argument(
        "--shift", type=float, default=3.0, help="time shift, diffusers' flow_shift (default: 3.0)"
    )
    s.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    s.add_argument(
        "--guidance-scale",
        type=float,
        default=1.0,
        help="classifier-free guidance against the empty prompt; 1 = off (default: 1.0)",
    )
    s.add_argument(
        "--guidance-reward",
        default=None,
        help="test-time reward guidance (VGGRPO): 'smoothness' of the camera the Latent "
        "Geometry Model reads from the latents (embedded policies' latents)",
    )
    s.add_argument(
        "--guidance-step-size",
        type=float,
        default=0.05,
        help="per-element move up the normalised reward gradient (default: 0.05)",
    )
    s.add_argument(
        "--guidance-every", type=int, default=5, help="guide after every n-th step (default: 5)"
    )
    s.add_argument(
        "--device", default="cpu", help="torch device, e.g. cuda or cuda:1 (default: cpu)"
    )
    s.add_argument("--out", default="sample.mp4", help="output video (default: sample.mp4)")
    _add_verify_flag(s)
    s.set_defaults(func=_sample)
    rep = sub.add_parser(
        "report",
        help="one static HTML page of the runs, eval suites and comparisons under a folder",
    )
    rep.add_argument("dir", help="a results folder, searched recursively (e.g. runs)")
    rep.add_argument(
        "--out",
        default="report.html",
        help="the page to write; its images and videos go to <stem>_files/ beside it "
        "(default: report.html)",
    )
    rep.set_defaults(func=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``geogrpo`` and ``python -m geogrpo``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    from geogrpo.utils.integrity import weight_verification

    try:
        with weight_verification(False if getattr(args, "no_verify_weights", False) else None):
            return int(args.func(args))
    except (ValueError, OSError) as err:  # OSError: FileNotFoundError, PermissionError, ...
        rank = os.environ.get("RANK", "0")  # under torchrun every rank reports, rank 0 plainly
        print(f"error{'' if rank == '0' else f' (rank {rank})'}: {err}", file=sys.stderr)
        return 2
