"""Policies on a CUDA device: the same seed gives the same video as on the CPU, every
conditioning trains under bf16 autocast with gradient checkpointing, and pretraining on the GPU
follows the CPU run. Skipped without CUDA (``bench/RESULTS.md`` records where they ran)."""

import json

import pytest
import torch

from geogrpo.cli import main
from geogrpo.models.policy import SHIPPED, VideoPolicy
from geogrpo.pretrain.config import PolicyPretrainConfig
from geogrpo.pretrain.policy import pretrain_policy
from geogrpo.train.rollout import generate
from tests.models.test_policy import (
    EVERY_CONDITIONING,
    PROMPT,
    H,
    W,
    gradients_without_and_with_checkpointing,
    raw_inputs,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture
def exact_float32():
    """TF32 off, so CPU and GPU differ only by summation order."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_policy_samples_the_same_video_on_cpu_and_cuda(name, exact_float32):
    """Inputs stay on the CPU (as a user loads them); noise is drawn on the CPU from the seed."""
    videos = []
    for device in ("cpu", "cuda"):
        policy = VideoPolicy.from_pretrained(name).to(device)
        with torch.no_grad():
            inputs = raw_inputs(1, name=policy.conditioning.name)
            video = generate(
                policy, [PROMPT], 5, H, W, num_inference_steps=4, seed=3, inputs=inputs
            )
        assert video.device.type == device
        videos.append(video.cpu())
    assert float(videos[0].std()) > 0.05
    torch.testing.assert_close(videos[1], videos[0], atol=2e-3, rtol=0)


@pytest.mark.parametrize(("name", "options"), EVERY_CONDITIONING)
def test_every_conditioning_trains_on_cuda_with_bf16_and_checkpointing(name, options):
    without, with_checkpointing = gradients_without_and_with_checkpointing(
        name, options, "cuda", torch.bfloat16
    )
    assert without.is_cuda
    torch.testing.assert_close(with_checkpointing, without, atol=1e-5, rtol=1e-3)


def test_pretraining_on_cuda_follows_the_cpu_run(tmp_path, exact_float32):
    """Batches, times and noise are drawn on the CPU, so both runs see the same ones."""
    losses = {}
    for device in ("cpu", "cuda"):
        cfg = PolicyPretrainConfig(
            conditioning="camera_v2v",
            out=str(tmp_path / device),
            data_dir=str(tmp_path / "data"),
            n_train=3,
            n_val=1,
            frames=5,
            size=32,
            steps=4,
            batch=2,
            layers=1,
            heads=2,
            head_dim=12,
            ffn_dim=16,
            text_dim=16,
            camera_rays=True,
            device=device,
        )
        pretrain_policy(cfg)
        rows = (tmp_path / device / "logs" / "metrics.jsonl").read_text().splitlines()
        losses[device] = [json.loads(r)["loss"] for r in rows]
        assert VideoPolicy.from_pretrained(tmp_path / device).device.type == "cpu"
    assert len(losses["cpu"]) == 4
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=1e-3)


def test_cli_samples_on_cuda(tmp_path):
    pytest.importorskip("av", reason="writing the mp4 needs PyAV")
    from geogrpo.utils.video import read_video

    out = tmp_path / "t2v.mp4"
    args = ["sample", "--policy", "tiny-t2v", "--prompt", PROMPT, "--steps", "2"]
    assert main([*args, "--device", "cuda", "--out", str(out)]) == 0
    assert read_video(out).shape == (17, 96, 96, 3)
