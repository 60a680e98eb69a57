"""The command line: --help/--version, a short toy run's outputs, and clear errors."""

import json
import subprocess
import sys

from geogrpo import __version__
from geogrpo.cli import build_parser, main
from geogrpo.train.logging import read_jsonl

SHORT = [
    "--pretrain-steps",
    "50",
    "--iterations",
    "2",
    "--groups",
    "2",
    "--group-size",
    "4",
    "--eval-samples",
    "64",
]


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "geogrpo", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_version_and_help_through_python_m():
    out = _run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"geogrpo {__version__}"
    helped = _run("--help")
    assert helped.returncode == 0 and "demo" in helped.stdout and "toy-grpo" in helped.stdout
    toy_help = _run("toy-grpo", "--help")
    assert "--kl-beta" in toy_help.stdout and "KL weight" in toy_help.stdout


def test_toy_run_writes_metrics_plot_summary_and_weights(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["toy-grpo", *SHORT, "--out", str(out)]) == 0
    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1]
    assert {"train/reward_mean", "loss/policy", "loss/kl"} <= set(rows[0])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["iterations"] == 2 and "reward" in summary["after"]
    assert (out / "toy_grpo.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "model.safetensors").stat().st_size > 0
    assert list((out / "tensorboard").iterdir())
    assert not list(out.glob(".*.tmp"))  # atomic writes left no temporaries
    assert "before" in capsys.readouterr().out


def test_non_empty_output_folder_is_refused_without_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert main(["toy-grpo", *SHORT, "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "precious"


def test_bad_flag_value_gives_a_clear_error(tmp_path):
    out = _run("toy-grpo", "--group-size", "1", "--out", str(tmp_path / "x"))
    assert out.returncode == 2
    assert "group_size" in out.stderr and "Traceback" not in out.stderr


def test_the_parser_is_built_without_torch():
    """``geogrpo --help`` and a mistyped flag answer at once: building the parser and parsing a
    pretraining's flags import no torch (``world`` and ``toy-grpo`` add theirs when used)."""
    code = (
        "import sys; from geogrpo.cli import build_parser; "
        "args = build_parser().parse_args(['pretrain', 'policy', '--steps', '3']); "
        "assert args.steps == 3; "
        "heavy = sorted({'torch', 'diffusers'} & set(sys.modules)); "
        "assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    args = build_parser().parse_args(["world", "render", "--frames", "5"])
    assert args.frames == 5 and args.trajectory == "arc_left"  # the lazy flags are all there
