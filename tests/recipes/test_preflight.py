"""Full-scale recipes load, and the pre-flight check names every file a run would miss."""

import json

import pytest

from geogrpo.cli import main
from geogrpo.models.wan import CONFIGS
from geogrpo.recipes.preflight import check_full_scale_files
from geogrpo.train.config import load_config

FULL = ("geo_align", "devis_grpo", "vggrpo", "world_r1")
WAN = "models/Wan2.1-T2V-1.3B-Diffusers"
WAN_FILES = (
    "model_index.json",
    "transformer/config.json",
    "transformer/diffusion_pytorch_model.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "text_encoder/config.json",
    "text_encoder/model.safetensors",
    "tokenizer/tokenizer_config.json",
    "tokenizer/tokenizer.json",
)
# (estimator, its model_dir, repo, files); devis_grpo's rewards need no estimator model
ESTIMATORS = {
    "geo_align": (
        "mapanything",
        "models/map-anything",
        "facebook/map-anything",
        ("config.json", "model.safetensors"),
    ),
    "devis_grpo": ("tinygeo", "", "", ()),
    "vggrpo": ("vggt", "models/VGGT-1B", "facebook/VGGT-1B", ("model.safetensors",)),
    "world_r1": (
        "da3",
        "models/DA3-LARGE",
        "depth-anything/DA3-LARGE",
        ("config.json", "model.safetensors"),
    ),
}


# the papers' quality model where a recipe names one (HPSv3: Geo-Align, World-R1)
HPSV3 = ("models/HPSv3", "MizzenAI/HPSv3", ("HPSv3.safetensors",))
SCORERS = {"geo_align": HPSV3, "world_r1": HPSV3}


@pytest.mark.parametrize("name", FULL)
def test_full_recipes_load_at_480x832x81_on_local_wan(name):
    config = load_config(name, scale="full")
    assert config.recipe == name and config.model.policy == WAN
    assert config.model.architecture == "wan2.1-t2v-1.3b" and config.model.device == "cuda"
    assert config.model.mixed_precision == "bf16" and config.model.gradient_checkpointing
    assert (config.data.frames, config.data.size, config.data.width) == (81, 480, 832)
    assert config.distributed.strategy == "fsdp"
    estimator, model_dir = ESTIMATORS[name][:2]
    assert config.rewards.estimator == estimator
    assert config.rewards.estimator_options.get("model_dir", "") == model_dir


def _write(root, files, transformer=None):
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    if transformer is not None:
        (root / "transformer" / "config.json").write_text(json.dumps(transformer))


@pytest.mark.parametrize("name", FULL)
def test_nothing_on_disk_lists_every_missing_file(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        check_full_scale_files(load_config(name, scale="full"))
    message = str(err.value)
    wanted = [f"{WAN}  (model.policy", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"]
    wanted += [f"    {rel}: " for rel in WAN_FILES]
    count = len(WAN_FILES)
    _, model_dir, repo, files = ESTIMATORS[name]
    if files:
        wanted += [f"{model_dir}  (rewards.estimator_options.model_dir", repo]
        wanted += [f"    {rel}: " for rel in files]
        count += len(files)
    if name in SCORERS:
        root, repo, files = SCORERS[name]
        wanted += [f"{root}  (rewards.quality.options.checkpoint_path", repo]
        wanted += [f"    {rel}: " for rel in files]
        count += len(files)
    for text in wanted:
        assert text in message, text
    assert message.startswith(f"full-scale pre-flight: nothing was loaded; {count} files")


@pytest.mark.parametrize("name", FULL)
def test_a_folder_with_every_file_passes(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / WAN, WAN_FILES, transformer=CONFIGS["wan2.1-t2v-1.3b"])
    _, model_dir, _, files = ESTIMATORS[name]
    _write(tmp_path / model_dir, files)
    if name in SCORERS:
        _write(tmp_path / SCORERS[name][0], SCORERS[name][2])
    check_full_scale_files(load_config(name, scale="full"))


def test_the_papers_quality_models_build_behind_the_quality_reward():
    """``scorer: hpsv3`` reaches HPSv3Scorer (its package is not installed here: the error says
    how to get it); VideoAlign's missing code is named by the pre-flight check."""
    from geogrpo.recipes.build import build_reward
    from geogrpo.recipes.preflight import reward_model_folders
    from geogrpo.train.config import RewardSpec

    with pytest.raises(ImportError, match="'hpsv3' package: pip install hpsv3"):
        build_reward("quality", scorer="hpsv3", checkpoint_path="x.safetensors", device="cpu")
    spec = RewardSpec("quality", options={"scorer": "videoalign", "repo_dir": "nowhere"})
    (folder,) = reward_model_folders([spec])
    assert [rel for rel, _ in folder.missing] == ["inference.py", "models/VideoReward"]


def test_shards_an_unset_model_dir_and_reward_model_paths_are_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / WAN, [f for f in WAN_FILES if f != "text_encoder/model.safetensors"])
    index = {
        "weight_map": {
            "a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors",
        }
    }
    (tmp_path / WAN / "text_encoder" / "model.safetensors.index.json").write_text(json.dumps(index))
    _write(tmp_path / WAN / "text_encoder", ["model-00001-of-00002.safetensors"])
    rewards = (
        "rewards.rewards=[{name: reconstruction, options: {judge: models/qwen}}, "
        "{name: quality, options: {scorer: models/my-quality}}]"
    )
    config = load_config(
        "world_r1", "full", overrides=[rewards, "rewards.estimator_options.model_dir="]
    )
    with pytest.raises(FileNotFoundError) as err:
        check_full_scale_files(config)
    message = str(err.value)
    assert "text_encoder/model-00002-of-00002.safetensors: the UMT5" in message
    assert "model-00001-of-00002" not in message
    assert "<rewards.estimator_options.model_dir is not set>" in message
    assert "models/qwen  (rewards.reconstruction.options.judge" in message
    assert "Qwen/Qwen3-VL-8B-Instruct" in message and "    preprocessor_config.json" in message
    assert "models/my-quality  (rewards.quality.options.scorer" in message
    assert "geogrpo pretrain quality" in message


def test_an_architecture_mismatch_names_both(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / WAN, WAN_FILES, transformer=CONFIGS["wan2.1-t2v-14b"])
    with pytest.raises(
        ValueError, match="model.architecture: wan2.1-t2v-1.3b .* holds wan2.1-t2v-14b"
    ):
        check_full_scale_files(load_config("devis_grpo", scale="full"))
    # alongside missing files it is one more line of the same error
    with pytest.raises(FileNotFoundError, match="(?s)files are missing.*holds wan2.1-t2v-14b"):
        check_full_scale_files(load_config("vggrpo", scale="full"))


def test_shipped_and_saved_policies_are_not_checked(tmp_path):
    check_full_scale_files(load_config("overfit"))
    (tmp_path / "policy.json").write_text("{}")  # a folder VideoPolicy.save_pretrained wrote
    check_full_scale_files(load_config("overfit", overrides=[f"model.policy={tmp_path}"]))


def test_train_at_full_scale_stops_before_loading_with_every_missing_file(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--recipe", "geo_align", "--scale", "full", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: full-scale pre-flight: nothing was loaded; 12 files are missing")
    assert f"{WAN}  (model.policy" in err and "    tokenizer/tokenizer.json" in err
    assert "models/map-anything  (rewards.estimator_options.model_dir" in err
    assert "models/HPSv3  (rewards.quality.options.checkpoint_path" in err
    assert not (tmp_path / "x").exists()


def test_a_v2v_run_that_estimates_its_sources_needs_the_estimator(tmp_path, monkeypatch):
    """No geometry reward, but camera_v2v with reference_geometry: estimated builds the
    estimator for the sources; a t2v run with the same rewards does not."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / WAN, WAN_FILES, transformer=CONFIGS["wan2.1-t2v-1.3b"])
    rewards = ["rewards.rewards=[{name: quality}]", "rewards.reference_geometry=estimated"]
    v2v = load_config("geo_align", scale="full", overrides=rewards)
    with pytest.raises(FileNotFoundError, match="models/map-anything  \\(rewards.estimator"):
        check_full_scale_files(v2v)
    t2v = load_config("geo_align", scale="full", overrides=[*rewards, "model.conditioning=t2v"])
    check_full_scale_files(t2v)
