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
        parser.add_argument(flag, dest=f.name, type=type(default), default=default, help=help_text)


def config_from_args(cls: type, args: argparse.Namespace) -> Any:
    """Build ``cls`` from parsed flags; its ``__post_init__`` rejects bad values."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def _run_toy(args: argparse.Namespace) -> int:
    from safetensors.torch import save_file

    from geogrpo.toy import ToyGRPOConfig, plot_toy_result, run_toy_grpo
    from geogrpo.train.logging import RunLogger
    from geogrpo.utils.io import atomic_path, atomic_write_json

    cfg = config_from_args(ToyGRPOConfig, args)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        print(
            f"error: --out {out} is not empty; pass --overwrite or choose another folder",
            file=sys.stderr,
        )
        return 2
    if args.overwrite and (out / "metrics.jsonl").exists():
        (out / "metrics.jsonl").unlink()
    with RunLogger(out) as logger:
        result = run_toy_grpo(cfg, log=logger.log)
    atomic_write_json(out / "summary.json", result.summary())
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(result.model.state_dict(), str(tmp))
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
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
