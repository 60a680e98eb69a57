"""Policy pretraining on tiny clips: it learns, saves a loadable policy and an exportable one,
resumes exactly; the latent cache, the loss and the time distribution against exact answers."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from geogrpo.models.policy import SAMPLE_PREDICTION_T_MIN, VideoPolicy
from geogrpo.pretrain import policy as policy_pretraining
from geogrpo.pretrain.config import PolicyExportConfig, PolicyPretrainConfig
from geogrpo.pretrain.policy import (
    LatentSet,
    cached_latents,
    export_policy,
    flow_matching_loss,
    pretrain_policy,
    training_times,
)
from geogrpo.utils.io import file_sha256
from tests.models.test_policy import PROMPT, tiny_policy
from tests.pretrain.runs import SMALL, fails_on_call


@pytest.mark.parametrize("conditioning", ["t2v", "camera_v2v", "reproj_v2v"])
def test_policy_pretraining_lowers_the_loss_and_saves_a_loadable_policy(
    autoencoder_run, conditioning
):
    root, ae_cfg, _ = autoencoder_run
    out = root / conditioning
    cfg = PolicyPretrainConfig(
        conditioning=conditioning,
        autoencoder=ae_cfg.out,
        out=str(out),
        data_dir=str(root / "data"),
        n_train=4,
        n_val=2,
        steps=40,
        batch=4,
        lr=2e-3,
        layers=1,
        heads=2,
        head_dim=12,
        ffn_dim=16,
        text_dim=16,
        eval_every=20,  # writes out/latest at step 20; the final policy replaces it
        **SMALL,
    )
    metrics = pretrain_policy(cfg)
    assert not (out / "latest").exists()
    rows = [json.loads(line) for line in (out / "logs" / "metrics.jsonl").read_text().splitlines()]
    first, last = rows[0]["loss"], sum(r["loss"] for r in rows[-10:]) / 10
    assert last < first  # flow-matching loss of a fresh model is ~2 (unit-variance target)
    policy = VideoPolicy.from_pretrained(out)
    assert policy.conditioning.name == conditioning
    manifest = json.loads((out / "manifest.json").read_text())
    for rel, digest in manifest["sha256"].items():
        assert file_sha256(out / rel) == digest
    assert metrics["transformer_params"] == sum(p.numel() for p in policy.transformer.parameters())
    if conditioning == "t2v":  # continuing from the saved policy starts from its weights
        again = PolicyPretrainConfig(
            **{**cfg.__dict__, "out": str(root / "again"), "init_from": str(out), "steps": 1}
        )
        again.lr = 1e-12
        pretrain_policy(again)
        a = policy.transformer.state_dict()
        b = VideoPolicy.from_pretrained(root / "again").transformer.state_dict()
        assert all(torch.allclose(a[k], b[k], atol=1e-7) for k in a)
        chained = json.loads((root / "again" / "manifest.json").read_text())
        assert chained["init_from_manifest"] == manifest  # the chain can be replayed
        check_export(out, root / "exported", manifest)


def check_export(source, out, run_manifest):
    """float16 export: half the transformer bytes, same predictions to fp16 precision, manifest
    traceable to the run."""
    export_policy(PolicyExportConfig(source=str(source), out=str(out), dtype="float16"))
    weights = Path("transformer") / "diffusion_pytorch_model.safetensors"
    stored = load_file(str(out / weights))
    assert all(v.dtype == torch.float16 for v in stored.values())
    assert (out / weights).stat().st_size < 0.6 * (source / weights).stat().st_size
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["exported_from"] == run_manifest
    assert manifest["command"] == run_manifest["command"]
    for rel, digest in manifest["sha256"].items():
        assert file_sha256(out / rel) == digest
    a, b = VideoPolicy.from_pretrained(source), VideoPolicy.from_pretrained(out)
    assert next(b.transformer.parameters()).dtype == torch.float32  # cast back on load
    cond = a.prepare([PROMPT])
    x = torch.randn(1, a.latent_channels, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        va, vb = a.velocity(x, 0.5, cond), b.velocity(x, 0.5, cond)
    assert not torch.equal(va, vb)  # really rounded
    assert torch.allclose(va, vb, atol=5e-3 * float(va.abs().max()))
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        export_policy(PolicyExportConfig(source=str(out / "transformer"), out=str(out / "x")))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="conditioning"):
        pretrain_policy(PolicyPretrainConfig(conditioning="image"))
    with pytest.raises(ValueError, match="dtype"):
        PolicyExportConfig(dtype="int8")
    with pytest.raises(ValueError, match="loss"):
        PolicyPretrainConfig(loss="l1")


def test_an_interrupted_run_resumes_exactly(autoencoder_run, monkeypatch):
    """Stopped during step 5 (its last evaluation was at step 3), then resumed: the same
    weights, losses and log as the run that never stopped, bit for bit."""
    root, ae_cfg, _ = autoencoder_run

    def config(out: str, **changes) -> PolicyPretrainConfig:
        settings = {
            "conditioning": "camera_v2v",
            "autoencoder": ae_cfg.out,
            "out": str(root / out),
            "data_dir": str(root / "data"),
            "n_train": 4,
            "n_val": 2,
            "steps": 8,
            "batch": 2,
            "lr": 2e-3,
            "layers": 1,
            "heads": 2,
            "head_dim": 12,
            "ffn_dim": 16,
            "text_dim": 16,
            "eval_every": 3,
            **SMALL,
        }
        return PolicyPretrainConfig(**{**settings, **changes})

    pretrain_policy(config("whole"))
    with monkeypatch.context() as m:  # calls: steps 1-3, val at 3, step 4, step 5
        m.setattr(policy_pretraining, "flow_matching_loss", fails_on_call(6, flow_matching_loss))
        with pytest.raises(RuntimeError, match="power cut"):
            pretrain_policy(config("cut"))
    logged = [json.loads(r)["step"] for r in (root / "cut/logs/metrics.jsonl").open()]
    assert logged == [1, 2, 3, 4]  # step 4 was logged after the state of step 3 was saved
    with pytest.raises(ValueError, match="lr"):
        pretrain_policy(config("cut", resume=True, lr=1e-3))
    pretrain_policy(config("cut", resume=True, eval_every=2))  # saving more often is allowed
    whole = VideoPolicy.from_pretrained(root / "whole").transformer.state_dict()
    cut = VideoPolicy.from_pretrained(root / "cut").transformer.state_dict()
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    rows = {
        name: [json.loads(r) for r in (root / name / "logs/metrics.jsonl").open()]
        for name in ("whole", "cut")
    }
    assert [r["step"] for r in rows["cut"]] == list(range(1, 9))
    assert [r["loss"] for r in rows["cut"]] == [r["loss"] for r in rows["whole"]]
    assert rows["cut"][-1]["val_loss"] == rows["whole"][-1]["val_loss"]
    with pytest.raises(FileNotFoundError, match="without --resume"):  # it finished
        pretrain_policy(config("cut", resume=True))


def test_the_device_is_checked_before_any_work():
    with pytest.raises(ValueError, match="not a torch device"):
        PolicyPretrainConfig(device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            PolicyPretrainConfig(device="cuda")


def test_training_times_follow_the_shifted_logit_normal():
    gen = torch.Generator().manual_seed(0)
    for shift in (1.0, 3.0):
        t = training_times(200_000, shift, gen)
        assert float(t.min()) > 0 and float(t.max()) < 1
        assert abs(float(t.median()) - shift / (1 + shift)) < 0.005  # median of u is 1/2


def test_sample_loss_is_the_error_of_the_implied_clean_latent():
    policy = tiny_policy("t2v", prediction="sample")
    cond = policy.prepare([PROMPT] * 3)
    x0 = torch.randn(3, policy.latent_channels, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    seed = 3
    loss = flow_matching_loss(policy, x0, cond, torch.Generator().manual_seed(seed), "sample")
    gen = torch.Generator().manual_seed(seed)  # replay the same draws
    t = training_times(3, 1.0, gen)
    assert float(t.min()) >= SAMPLE_PREDICTION_T_MIN  # where the weighting is exact
    eps = torch.randn(x0.shape, generator=gen)
    tt = t.view(-1, 1, 1, 1, 1)
    xt = (1 - tt) * x0 + tt * eps
    x0_hat = xt - tt * policy.velocity(xt, t, cond)
    assert torch.allclose(loss, torch.nn.functional.mse_loss(x0_hat, x0), rtol=1e-5)
    v_loss = flow_matching_loss(policy, x0, cond, torch.Generator().manual_seed(seed))
    assert v_loss.item() > loss.item()  # t < 1: the velocity error is the x0 error over t


def test_latent_cache_round_trips_and_refuses_another_key(tmp_path):
    g = torch.Generator().manual_seed(0)
    latents = LatentSet(
        ["a room", "a hall"],
        torch.randn(2, 8, 2, 4, 4, generator=g),
        source=torch.randn(2, 8, 2, 4, 4, generator=g),
        cameras=torch.eye(4).expand(2, 5, 4, 4).clone(),
    )
    path = tmp_path / "cache.safetensors"
    latents.save(path, "camera_v2v/train/autoencoder-a")
    loaded = LatentSet.load(path, "camera_v2v/train/autoencoder-a")
    assert loaded.prompts == latents.prompts and loaded.reproj is None
    assert torch.equal(loaded.target, latents.target) and torch.equal(loaded.source, latents.source)
    assert LatentSet.load(path, "camera_v2v/train/autoencoder-b") is None  # other autoencoder
    assert LatentSet.load(tmp_path / "missing.safetensors", "x") is None


def test_latent_cache_grows_by_encoding_only_the_new_items(tmp_path):
    encoded: list[int] = []
    announced: list[list[int]] = []  # what before_encoding hears (to render it in parallel)

    def encode(idx: list[int]) -> LatentSet:  # item i is a pure function of i, like the world's
        encoded.extend(idx)
        return LatentSet(
            [f"item {i}" for i in idx],
            torch.tensor(idx, dtype=torch.float32).view(-1, 1, 1, 1, 1).expand(-1, 2, 1, 2, 2),
        )

    def cached(n: int, digest: str = "ae-a") -> LatentSet:
        return cached_latents(
            tmp_path, "pairs_train", "5x32", n, digest, encode, before_encoding=announced.append
        )

    cached(3)
    assert encoded == [0, 1, 2] and announced == [[0, 1, 2]]
    encoded.clear()
    got = cached(5)
    assert got.prompts == [f"item {i}" for i in range(5)] and encoded == [3, 4]  # grown, not redone
    assert announced[-1] == [3, 4]
    want = encode(list(range(5)))
    assert torch.equal(got.target, want.target)
    encoded.clear()
    got = cached(4)
    assert encoded == [] and torch.equal(got.target, want.target[:4])  # the head of the 5-set
    assert len(announced) == 2  # nothing to encode, nothing announced
    encoded.clear()
    cached(2, "ae-b")
    assert encoded == [0, 1]  # another autoencoder's latents are not reused
