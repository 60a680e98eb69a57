"""Property-based fuzz of the input contracts at the public entries (issue 26).

Every generated case must end in one of:

* ``error``: a ``ValueError`` / ``TypeError`` (or the CLI's exit code 2) whose message names the
  argument at fault;
* ``repair``: a documented repair (a video overshooting its range by at most
  ``RANGE_TOLERANCE`` is clamped; a single prompt string is one prompt; a reward masks a bad
  sample with a reason);
* ``valid``: a valid input, handled, with an output that keeps the contract.

Anything else (an exception from inside torch, av or diffusers, a silently accepted bad input, a
wrong output) is a breach. Breaches are collected rather than raised, so a run against older code
counts them per entry; each test asserts there are none. ``test_case_count`` (last) checks that
at least 1,000 cases ran and prints the table of outcomes (bench/RESULTS.md, issue 26).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geogrpo.cli import main
from geogrpo.models.conditioning import ConditionInputs
from geogrpo.models.policy import VideoPolicy
from geogrpo.perception.base import (
    KnownGeometry,
    check_video,
    estimate_from_truth,
    sanitize_video,
)
from geogrpo.rewards.base import RewardBatch
from geogrpo.rewards.geometry import SmoothnessReward, TrajectoryReward
from geogrpo.rewards.quality import QualityReward
from geogrpo.train.rollout import generate
from geogrpo.utils.checks import RANGE_TOLERANCE
from geogrpo.utils.video import frames_to_model, to_uint8, write_video
from geogrpo.world.paths import make_path

OUTCOMES: Counter[tuple[str, str]] = Counter()
BREACHES: dict[str, list[str]] = defaultdict(list)
MIN_CASES = 1000


def fuzz(n: int):
    """Deterministic hypothesis settings (CI sees the same cases every run)."""
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def run_case(
    entry: str,
    call,
    *,
    bad: str | None,
    names: tuple[str, ...],
    check=None,
    says: str = "",
    masks: bool = False,
) -> None:
    """Run ``call()`` and classify it. ``bad`` says why the input breaks the contract (None:
    it keeps it); ``names`` are the argument names an error may cite, ``says`` a phrase it must
    hold; ``check(result)`` returns "valid", "repair" or why the output is wrong. ``masks``:
    the entry is a reward, which may answer a bad batch by masking every sample with a reason
    (``check`` says whether it did)."""
    try:
        result = call()
    except (ValueError, TypeError) as err:
        message = str(err)
        if bad is None:
            BREACHES[entry].append(f"valid input rejected: {type(err).__name__}: {message}")
        elif not any(n in message for n in names) or says not in message:
            BREACHES[entry].append(f"{bad}: message names none of {names} ({says}): {message}")
        elif _from_library(err):
            BREACHES[entry].append(f"{bad}: error from inside a library: {message}")
        else:
            OUTCOMES[entry, "error"] += 1
        return
    except Exception as err:  # any other type is a traceback a user should not see
        BREACHES[entry].append(f"{bad or 'valid'}: {type(err).__name__}: {err}")
        return
    verdict = check(result) if check is not None else "valid"
    if bad is not None and not masks:
        verdict = None  # only a reward may return on a bad input, all of it masked
    if verdict in ("valid", "repair"):
        OUTCOMES[entry, verdict] += 1
    elif bad is not None and verdict is None:
        BREACHES[entry].append(f"{bad}: accepted silently")
    else:
        BREACHES[entry].append(f"{bad or 'valid input'}: wrong output: {verdict}")


def _from_library(err: BaseException) -> bool:
    """Raised inside torch / av / diffusers / safetensors / cv2 rather than by our checks.
    Python's own argument binding ("unexpected keyword argument 'x'") is a clear error even
    when a decorator (``torch.no_grad``) makes the call."""
    if isinstance(err, TypeError) and "unexpected keyword argument" in str(err):
        return False
    tb = err.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last is not None and "geogrpo" not in last and "site-packages" in last


def assert_no_breaches(entry: str) -> None:
    found = BREACHES.get(entry, [])
    assert not found, f"{len(found)} breaches of {entry}'s contract, e.g.:\n" + "\n".join(
        sorted(set(found))[:10]
    )


# --- videos: dtype, range, shape, NaN placement ------------------------------------------------

RANGES = ("unit", "overshoot", "signed", "255", "wild")
DTYPES = (torch.float32, torch.float64, torch.float16, torch.uint8, torch.int64)


@st.composite
def videos(draw, layout: str, low: float = 0.0, high: float = 1.0):
    """A tiny video in ``layout`` ("BFHW3", "FHW3", "B3FHW"), often malformed; returns
    ``(tensor, why it is bad or None, whether it needs the overshoot repair, NaN samples)``."""
    dtype = draw(st.sampled_from(DTYPES))
    kind = draw(st.sampled_from(RANGES))
    b = draw(st.integers(1, 3))
    f = draw(st.sampled_from((1, 2, 3, 5)))
    h = draw(st.sampled_from((4, 8, 16)))
    w = draw(st.sampled_from((4, 8, 16)))
    shape = {"BFHW3": (b, f, h, w, 3), "FHW3": (f, h, w, 3), "B3FHW": (b, 3, f, h, w)}[layout]
    broken_shape = draw(st.sampled_from((None, None, None, "channels", "ndim", "empty")))
    if broken_shape == "channels":
        shape = (*shape[:-1], 4) if layout != "B3FHW" else (shape[0], 4, *shape[2:])
    elif broken_shape == "ndim":
        shape = shape[1:]
    elif broken_shape == "empty":
        shape = (0, *shape[1:])
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    x = torch.rand(shape, generator=g, dtype=torch.float64) * (high - low) + low
    over = draw(st.floats(1e-5, RANGE_TOLERANCE * 0.9))
    scale = {
        "unit": (x, None),
        "overshoot": (x.clamp(low, high) + over * torch.sign(x - (low + high) / 2), None),
        "signed": ((x - low) / (high - low) * 2 - 1 if low == 0 else x, None),
        "255": ((x - low) / (high - low) * 255, None),
        "wild": (x * draw(st.sampled_from((-3.0, 3.0, 1e4))), None),
    }
    x = scale[kind][0]
    if x.numel():
        lo, hi = float(x.min()), float(x.max())
    else:
        lo, hi = low, high
    out_of_range = lo < low - RANGE_TOLERANCE or hi > high + RANGE_TOLERANCE
    repair = not out_of_range and (lo < low or hi > high)
    nan_samples: list[int] = []
    place = draw(st.sampled_from(("none", "none", "one", "all", "inf")))
    if place != "none" and x.numel() and dtype.is_floating_point:
        flat = x.view(x.shape[0], -1)
        rows = range(x.shape[0]) if place == "all" else [draw(st.integers(0, x.shape[0] - 1))]
        for r in rows:
            flat[r, draw(st.integers(0, flat.shape[1] - 1))] = (
                math.inf if place == "inf" else math.nan
            )
            nan_samples.append(r)
    if dtype.is_floating_point:
        x = x.to(dtype)
        if dtype == torch.float16 and x.numel():  # float16 rounding can cross the tolerance
            fin = x[torch.isfinite(x)].double()
            if fin.numel():
                out_of_range = (
                    float(fin.min()) < low - RANGE_TOLERANCE
                    or float(fin.max()) > high + RANGE_TOLERANCE
                )
                repair = not out_of_range and (float(fin.min()) < low or float(fin.max()) > high)
    else:
        x = x.clamp(0, 255).round().to(dtype)
    bad = None
    if broken_shape is not None:
        bad = f"shape {tuple(x.shape)}"
    elif not dtype.is_floating_point:
        bad = f"dtype {dtype}"
    elif out_of_range:
        bad = f"range [{lo:.3g}, {hi:.3g}]"
    return x, bad, repair, sorted(set(nan_samples))


class Estimator(KnownGeometry):
    """Known geometry behind the input handling every shipped estimator does (tinygeo,
    classical: ``check_video``, then ``sanitize_video`` masks the non-finite samples)."""

    def estimate(self, video, intrinsics=None):
        check_video("video", video, min_frames=2)
        _, reasons = sanitize_video(video.float())
        est = super().estimate(video, intrinsics)
        for i, reason in enumerate(reasons):
            if reason:
                est.invalidate(i, reason)
        return est


def _geometry(b: int, f: int, h: int, w: int) -> Estimator:
    w2c = make_path("arc_left", max(f, 2), seed=0)[:f].expand(b, f, 4, 4)
    k = torch.tensor([[float(w), 0, w / 2], [0, float(w), h / 2], [0, 0, 1]])
    depth = torch.full((b, f, h, w), 2.0)
    return Estimator(estimate_from_truth(w2c, k, depth, depth > 0))


@pytest.fixture(scope="module")
def quality_reward():
    return QualityReward()


def test_rewards_check_videos(quality_reward):
    """Rewards refuse a video in the wrong range or dtype, mask its NaN samples, never clamp a
    [-1, 1] or 0-255 video into [0, 1] as before."""

    @fuzz(250)
    @given(videos("BFHW3"), st.booleans())
    def run(case, smoothness):
        video, bad, repair, nan_samples = case
        if video.ndim == 5 and video.shape[-1] == 3 and video.shape[0] > 0:
            geo = _geometry(*video.shape[:4])
        else:
            geo = _geometry(1, 3, 4, 4)
        reward = SmoothnessReward(geo) if smoothness else quality_reward
        min_frames = 3 if smoothness else 1

        def check(out):
            if not torch.isfinite(out.scores).all() or len(out.reasons) != out.scores.numel():
                return "non-finite scores or missing reasons"
            if bad is not None:  # only a whole batch masked with a reason keeps the contract
                ok = not out.valid.any() and all(out.reasons)
                return "repair" if ok else None
            if video.shape[1] < min_frames:
                return "repair" if not out.valid.any() and all(out.reasons) else "short clip scored"
            if any(bool(out.valid[i]) for i in nan_samples):
                return "a sample with NaN was scored"
            return "repair" if repair or nan_samples else "valid"

        run_case(
            "rewards (video)",
            lambda: reward(RewardBatch(video=video)),
            bad=bad,
            names=("video",),
            check=check,
            masks=True,
        )

    run()
    assert_no_breaches("rewards (video)")


def test_target_camera_nan_masks_one_sample():
    """A NaN or infinite target camera masks its sample only (the reward contract)."""

    @fuzz(100)
    @given(st.integers(2, 4), st.integers(2, 5), st.data())
    def run(b, f, data):
        geo = _geometry(b, f, 8, 8)
        target = geo.known.w2c.clone().float()
        rows = data.draw(st.sets(st.integers(0, b - 1), max_size=b))
        for r in rows:
            i, j = data.draw(st.integers(0, f - 1)), data.draw(st.integers(0, 3))
            target[r, i, j, data.draw(st.integers(0, 3))] = data.draw(
                st.sampled_from((math.nan, math.inf, -math.inf))
            )
        shape_bad = data.draw(st.sampled_from((None, None, None, "ndim", "3x3")))
        if shape_bad == "ndim":
            target = target[0]
        elif shape_bad == "3x3":
            target = target[..., :3, :3]
        video = torch.rand(b, f, 8, 8, 3)

        def check(out):
            if shape_bad is not None:
                return None
            masked = {i for i in range(b) if not out.valid[i]}
            if masked != set(rows) or not all(out.reasons[i] for i in masked):
                return f"masked {sorted(masked)}, NaN targets in {sorted(rows)}"
            return "repair" if rows else "valid"

        run_case(
            "rewards (target_w2c)",
            lambda: TrajectoryReward(geo)(RewardBatch(video=video, target_w2c=target)),
            bad=f"target_w2c {shape_bad}" if shape_bad else None,
            names=("target_w2c",),
            check=check,
        )

    run()
    assert_no_breaches("rewards (target_w2c)")


# --- video I/O -------------------------------------------------------------------------------


def test_video_writing_and_conversion(tmp_path):
    """``to_uint8`` / ``write_video`` / ``frames_to_model`` refuse 0-255, [-1, 1], integer and
    non-finite frames (0-255 frames made a white video) and clamp a tiny overshoot."""

    @fuzz(200)
    @given(videos("FHW3"), st.booleans())
    def run(case, as_batch):
        frames, bad, repair, nan_samples = case
        if nan_samples and bad is None:
            bad = "NaN frames"

        def check_uint8(out):
            ok = out.dtype.name == "uint8" and out.shape == tuple(frames.shape)
            return ("repair" if repair else "valid") if ok else f"got {out.dtype} {out.shape}"

        if as_batch:  # frames_to_model: NaN is the finiteness checks' business downstream
            bad_model = None if bad == "NaN frames" else bad
            run_case(
                "frames_to_model",
                lambda: frames_to_model(frames[None] if frames.ndim == 4 else frames),
                bad=bad_model,
                names=("frames",),
                check=lambda v: (
                    ("repair" if repair or nan_samples else "valid")
                    if v.dtype == torch.float32 and bool((v[torch.isfinite(v)].abs() <= 1).all())
                    else "outside [-1, 1]"
                ),
            )
        else:
            run_case(
                "to_uint8", lambda: to_uint8(frames), bad=bad, names=("frames",), check=check_uint8
            )

    run()

    @fuzz(40)
    @given(
        st.sampled_from((16.0, 0.0, -1.0, math.nan, math.inf, 8.5)),
        st.sampled_from((18, -1, 52, 0, 51)),
        st.sampled_from(("unit", "255", "signed")),
    )
    def run_write(fps, crf, kind):
        frames = torch.rand(2, 8, 8, 3)
        frames = {"unit": frames, "255": frames * 255, "signed": frames * 2 - 1}[kind]
        bad = []
        if not (math.isfinite(fps) and fps > 0):
            bad.append("fps")
        if not 0 <= crf <= 51:
            bad.append("crf")
        if kind != "unit":
            bad.append("frames")
        out = tmp_path / "v.mp4"
        run_case(
            "write_video",
            lambda: write_video(out, frames, fps=fps, crf=crf),
            bad=", ".join(bad) or None,
            names=tuple(bad) or ("frames",),
            check=lambda p: "valid" if Path(p).stat().st_size > 0 else "empty file",
        )

    run_write()
    assert_no_breaches("to_uint8")
    assert_no_breaches("frames_to_model")
    assert_no_breaches("write_video")


# --- conditioning inputs ----------------------------------------------------------------------


def test_condition_inputs():
    """camera_v2v's source video: [-1, 1] floats; uint8, 0-255 and NaN are named errors (NaN as
    the input's fault, not the model's); NaN cameras are the cameras' fault."""

    @fuzz(150)
    @given(videos("B3FHW", -1.0, 1.0), st.sampled_from(("none", "nan", "inf")))
    def run(case, camera_fault):
        src, bad, repair, nan_samples = case
        names = ("source_video",)
        if nan_samples and bad is None:
            bad = "NaN source"
        kwargs = {"source_video": src}
        if camera_fault != "none" and src.ndim == 5 and src.shape[0] > 0:
            cams = torch.eye(4).expand(src.shape[0], src.shape[2], 4, 4).clone()
            cams[0, 0, 0, 3] = math.nan if camera_fault == "nan" else math.inf
            kwargs["cameras"] = cams
            names, bad = ("source_video", "cameras"), bad or "NaN camera"

        def check(inputs):
            v = inputs.source_video
            inside = bool(((v >= -1) & (v <= 1)).all())
            return ("repair" if repair else "valid") if inside else "source outside [-1, 1]"

        run_case(
            "ConditionInputs",
            lambda: ConditionInputs(**kwargs),
            bad=bad,
            names=names,
            check=check,
            says="the input itself" if bad in ("NaN source", "NaN camera") else "",
        )

    run()
    assert_no_breaches("ConditionInputs")


def test_nan_source_is_reported_as_the_input():
    """NaN in a source video names the source video and the input, not the model output."""
    src = torch.zeros(1, 3, 5, 16, 16)
    src[0, 1, 2, 3, 4] = math.nan
    with pytest.raises(ValueError, match=r"source_video: 1 of .* index \(0, 1, 2, 3, 4\).*input"):
        ConditionInputs(source_video=src)


# --- sampling ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def t2v_policy():
    return VideoPolicy.from_pretrained("tiny-t2v")


PROMPTS = st.one_of(
    st.text(max_size=12),
    st.lists(st.text(max_size=8), min_size=0, max_size=3),
    st.lists(st.one_of(st.text(max_size=4), st.integers(), st.none()), min_size=1, max_size=3),
    st.tuples(st.text(max_size=4)),
    st.none(),
    st.integers(),
)
SIZES = st.sampled_from((16, 16, 32, 0, -16, 8, 24, 17))
FRAMES = st.sampled_from((1, 1, 5, 9, 0, -5, 2, 4))
UNKNOWN_KWARGS = st.sampled_from(("num_steps", "steps", "guidance", "sed", "height_", "frames"))


def test_generate(t2v_policy):
    """``generate`` checks prompts, frame counts, sizes and keyword arguments before any work;
    a string is one prompt; an unknown keyword is a TypeError that names it."""

    @fuzz(300)
    @given(
        PROMPTS,
        FRAMES,
        SIZES,
        SIZES,
        st.fixed_dictionaries(
            {},
            optional={
                "num_inference_steps": st.sampled_from((1, 2, 0, -1)),
                "shift": st.sampled_from((3.0, 1.0, 0.0, -1.0, math.nan, math.inf)),
                "seed": st.sampled_from((0, 7, -1, 2**70)),
                "guidance_scale": st.sampled_from((1.0, 2.0, -1.0, math.nan, math.inf)),
            },
        ),
        st.one_of(st.none(), UNKNOWN_KWARGS),
    )
    def run(prompts, frames, height, width, kwargs, unknown):
        kwargs = {"num_inference_steps": 1, **kwargs}
        bad, names = None, ()
        if isinstance(prompts, str):
            batch = 1
        elif (
            isinstance(prompts, (list, tuple))
            and prompts
            and all(isinstance(p, str) for p in prompts)
        ):
            batch = len(prompts)
        else:
            bad, names, batch = "prompts", ("prompts",), 0
        checks = (
            ("num_frames", frames, frames >= 1 and (frames - 1) % 4 == 0),
            ("height", height, height >= 16 and height % 16 == 0),
            ("width", width, width >= 16 and width % 16 == 0),
            (
                "num_inference_steps",
                kwargs["num_inference_steps"],
                kwargs["num_inference_steps"] >= 1,
            ),
            ("shift", kwargs.get("shift", 3.0), 0 < kwargs.get("shift", 3.0) < math.inf),
            ("seed", kwargs.get("seed", 0), 0 <= kwargs.get("seed", 0) < 2**63),
            (
                "guidance_scale",
                kwargs.get("guidance_scale", 1.0),
                0 <= kwargs.get("guidance_scale", 1.0) < math.inf,
            ),
        )
        for name, value, ok in checks:
            if not ok:
                bad, names = bad or f"{name}={value}", (*names, name)
        if unknown is not None:
            kwargs[unknown] = 1
            bad, names = bad or f"keyword {unknown}", (*names, unknown)

        def check(video):
            shape = (batch, 3, frames, height, width)
            if tuple(video.shape) != shape:
                return f"shape {tuple(video.shape)}, expected {shape}"
            if not bool(torch.isfinite(video).all()) or float(video.abs().max()) > 1:
                return "not finite in [-1, 1]"
            return "repair" if isinstance(prompts, str) else "valid"

        run_case(
            "generate",
            lambda: generate(t2v_policy, prompts, frames, height, width, **kwargs),
            bad=bad,
            names=names,
            check=check,
        )

    run()
    assert_no_breaches("generate")


# --- the command line, in process -------------------------------------------------------------

BAD_COUNTS = st.one_of(
    st.integers(-(10**6), 0).map(str),
    st.sampled_from(("nan", "inf", "1.5", "abc", "", "1e3", "-0")),
)
BAD_FLOATS = st.sampled_from(("nan", "inf", "-inf", "-1", "0", "abc", ""))


def cli(argv: list[str]) -> tuple[int, str]:
    """``main(argv)``'s exit code and stderr (argparse's SystemExit included)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except Exception as exc:  # a traceback the user would see: a breach, counted
            return 1, f"Traceback: {type(exc).__name__}: {exc}"
    return code, err.getvalue()


def run_cli(entry: str, argv: list[str], flag: str, bad: bool = True) -> None:
    """Run the CLI; a bad value must exit 2 with an error naming ``flag``."""
    code, err = cli(argv)
    name = flag.lstrip("-").replace("-", "_")
    if not bad:
        if code == 0:
            OUTCOMES[entry, "valid"] += 1
        else:
            BREACHES[entry].append(f"{argv}: valid options exit {code}: {err[-300:]}")
    elif code != 2:
        BREACHES[entry].append(f"{argv}: exit {code}, expected 2: {err[-300:]}")
    elif "Traceback" in err or not ("error" in err and (flag in err or name in err)):
        BREACHES[entry].append(f"{argv}: message does not name {flag}: {err[-300:]}")
    else:
        OUTCOMES[entry, "error"] += 1


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    """A scratch working folder: nothing a case writes lands in the checkout."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


CLI_COUNTS = (
    (
        ["sample", "--prompt", "A room."],
        ("--frames", "--size", "--height", "--width", "--steps", "--guidance-every", "--seed"),
    ),
    (["world", "render"], ("--frames", "--size")),
    (["world", "build"], ("--n", "--frames", "--size", "--workers")),
    (["world", "contact-sheet"], ("--per-split", "--size")),
    (["eval", "--suite", "camera_v2v"], ("--n", "--num-inference-steps")),
    (
        ["toy-grpo"],
        (
            "--modes",
            "--hidden",
            "--iterations",
            "--groups",
            "--group-size",
            "--num-steps",
            "--window-size",
        ),
    ),
    (["demo"], ("--steps",)),
)
CLI_FLOATS = (
    (["sample", "--prompt", "A room."], ("--shift", "--guidance-scale", "--guidance-step-size")),
    (["toy-grpo"], ("--lr", "--mode-std", "--radius", "--clip-range")),
)


def test_cli_numeric_options(in_tmp):
    """Every count and size a subcommand takes: zero, negative, NaN, fractions and text exit 2
    with an ``error:`` line naming the option, before any model loads or any file is written."""

    @fuzz(260)
    @given(st.sampled_from(CLI_COUNTS), st.data())
    def run_counts(command, data):
        base, flags = command
        flag = data.draw(st.sampled_from(flags))
        value = data.draw(BAD_COUNTS)
        if flag in ("--seed",) and value.lstrip("-").isdigit() and int(value) == 0:
            value = "-1"
        if flag == "--steps" and base == ["demo"] and value.lstrip("-").isdigit():
            value = str(min(int(value), 0))
        run_cli("CLI counts", [*base, flag, value], flag)

    run_counts()

    @fuzz(60)
    @given(st.sampled_from(CLI_FLOATS), st.data())
    def run_floats(command, data):
        base, flags = command
        flag = data.draw(st.sampled_from(flags))
        value = data.draw(BAD_FLOATS)
        if flag == "--guidance-scale" and value == "0":
            value = "-1"  # 0 is a valid scale (the unconditional model)
        run_cli("CLI floats", [*base, flag, value], flag)

    run_floats()
    assert not list(in_tmp.iterdir()), "a rejected command wrote files"
    assert_no_breaches("CLI counts")
    assert_no_breaches("CLI floats")


def test_cli_sample_valid_and_indivisible(in_tmp, t2v_policy, monkeypatch):
    """``geogrpo sample`` with small valid numbers samples (the shared tiny policy); a size
    the policy cannot divide exits 2 naming it, before sampling."""
    monkeypatch.setattr(
        VideoPolicy, "from_pretrained", classmethod(lambda cls, *a, **k: t2v_policy)
    )

    @fuzz(40)
    @given(
        st.sampled_from((1, 5)),
        st.sampled_from((16, 32, 24, 40)),
        st.one_of(st.none(), st.sampled_from((16, 8))),
        st.sampled_from(("1", "2")),
    )
    def run(frames, size, width, steps):
        argv = ["sample", "--prompt", "A room.", "--frames", str(frames), "--size", str(size)]
        argv += ["--steps", steps, "--out", "s.mp4"]
        if width is not None:
            argv += ["--width", str(width)]
        bad_flag = None
        if size % 16:
            bad_flag = "height"
        elif width is not None and width % 16:
            bad_flag = "width"
        run_cli("CLI sample", argv, bad_flag or "--size", bad=bad_flag is not None)

    run()
    assert_no_breaches("CLI sample")


def test_cli_subprocess_exits_cleanly(in_tmp):
    """Through a real process (the in-process cases above stand for the rest): exit 2, an
    ``error:`` line naming the option, no traceback."""
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = ["sample", "--size", "-96", "--prompt", "A room."]
    proc = subprocess.run(
        [sys.executable, "-m", "geogrpo", *argv], capture_output=True, text=True, env=env
    )
    if proc.returncode == 2 and "Traceback" not in proc.stderr and "--size" in proc.stderr:
        OUTCOMES["CLI subprocess", "error"] += 1
    else:
        BREACHES["CLI subprocess"].append(f"exit {proc.returncode}: {proc.stderr[-300:]}")
    assert_no_breaches("CLI subprocess")


def test_case_count():
    """At least 1,000 generated cases ran (this module's tests together); prints the table."""
    if len({entry for entry, _ in OUTCOMES}) < 9:
        pytest.skip("run the whole module to count its cases")
    total = sum(OUTCOMES.values())
    rows = sorted({entry for entry, _ in OUTCOMES})
    print(f"\n{'entry':<24}{'error':>8}{'repair':>8}{'valid':>8}")
    for entry in rows:
        counts = [OUTCOMES[entry, k] for k in ("error", "repair", "valid")]
        print(f"{entry:<24}" + "".join(f"{c:>8}" for c in counts))
    print(f"{'total':<24}{total:>8}")
    print("breaches per entry:", {k: len(v) for k, v in BREACHES.items() if v} or "none")
    assert total >= MIN_CASES, f"only {total} generated cases ran"
