"""Pre-flight check of a full-scale run: every local file it will read, before anything loads.

A full-scale run reads a diffusers-format Wan2.1 folder (tens of GB) and the perception models
of its rewards from local paths; nothing is downloaded at run time. Each loader fails clearly on
its own, but one at a time and only after the ones before it have loaded: a missing tokenizer
found after the transformer, or an estimator found missing after the policy, costs a multi-GPU
allocation minutes per retry. :func:`check_full_scale_files` reads only the config and the file
system and raises one error naming every missing file, what it is and where to get it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geogrpo.models.policy import RANDOM_PREFIX, SHIPPED
from geogrpo.models.wan import CONFIGS

# Hugging Face repositories of the diffusers-format Wan2.1 checkpoints, by model.architecture.
WAN_REPOS = {
    "wan2.1-t2v-1.3b": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    "wan2.1-t2v-14b": "Wan-AI/Wan2.1-T2V-14B-Diffusers",
}
# What each adapter of geogrpo.perception.adapters opens in its model_dir (its package's
# from_pretrained reads a PyTorchModelHubMixin folder; VGGT's defaults are the 1B config), and
# the Hugging Face repository of that folder.
ESTIMATOR_FILES = {
    "vggt": ("VGGT", "facebook/VGGT-1B", ("model.safetensors",)),
    "mapanything": ("MapAnything", "facebook/map-anything", ("config.json", "model.safetensors")),
    "da3": (
        "Depth Anything 3 (DA3-LARGE, or another DA3 checkpoint)",
        "depth-anything/DA3-LARGE",
        ("config.json", "model.safetensors"),
    ),
}
# The transformer config entries that tell the Wan2.1 sizes apart (in_channels may be widened).
ARCHITECTURE_KEYS = ("num_layers", "num_attention_heads", "attention_head_dim", "ffn_dim")
QWEN_VL_REPO = "Qwen/Qwen3-VL-8B-Instruct"


@dataclass
class Folder:
    """One local folder a run reads, and the files it lacks."""

    root: Path
    what: str
    key: str  # the config key that points at it
    repo: str = ""  # its Hugging Face repository
    how: str = ""  # how to make it, for a folder no repository holds
    missing: list[tuple[str, str]] = field(default_factory=list)  # (relative path, what it is)

    def need(self, relative: str, what: str) -> None:
        if not (self.root / relative).is_file():
            self.missing.append((relative, what))

    def need_weights(self, folder: str, stem: str, what: str) -> None:
        """``<stem>.safetensors``, or ``<stem>.safetensors.index.json`` and every shard it names."""
        prefix = f"{folder}/" if folder else ""
        single, index = f"{prefix}{stem}.safetensors", f"{prefix}{stem}.safetensors.index.json"
        if (self.root / single).is_file():
            return
        if not (self.root / index).is_file():
            self.missing.append((single, f"{what} (or its shards with {Path(index).name})"))
            return
        try:
            shards = json.loads((self.root / index).read_text(encoding="utf-8"))["weight_map"]
            names = sorted(set(shards.values()))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            self.missing.append((index, f"{what}: the shard index is not readable ({err})"))
            return
        for name in names:
            self.need(f"{prefix}{name}", f"{what}, a shard")

    def describe(self) -> list[str]:
        get = f"`huggingface-cli download {self.repo} --local-dir {self.root}`" if self.repo else ""
        lines = [f"  {self.root}  ({self.key}: {self.what}; get it with {get or self.how})"]
        lines += [f"    {rel}: {what}" for rel, what in self.missing]
        return lines


def wan_folder(root: Path, architecture: str) -> Folder:
    """The files ``VideoPolicy.from_pretrained`` reads from a diffusers-format Wan2.1 folder."""
    what = "the policy, a diffusers-format Wan2.1 folder"
    if architecture:
        folder = Folder(root, what, "model.policy", repo=WAN_REPOS[architecture])
    else:
        folder = Folder(root, what, "model.policy", how=" or ".join(WAN_REPOS.values()))
    folder.need("model_index.json", "the pipeline index")
    folder.need("transformer/config.json", "the DiT's config")
    folder.need_weights("transformer", "diffusion_pytorch_model", "the DiT's weights")
    folder.need("vae/config.json", "the Wan VAE's config")
    folder.need_weights("vae", "diffusion_pytorch_model", "the Wan VAE's weights")
    folder.need("text_encoder/config.json", "the UMT5 text encoder's config")
    folder.need_weights("text_encoder", "model", "the UMT5 text encoder's weights")
    folder.need("tokenizer/tokenizer_config.json", "the UMT5 tokenizer's config")
    if not any((root / "tokenizer" / n).is_file() for n in ("tokenizer.json", "spiece.model")):
        folder.missing.append(("tokenizer/tokenizer.json", "the UMT5 tokenizer (or spiece.model)"))
    return folder


def architecture_mismatch(root: Path, architecture: str) -> str:
    """Why ``root/transformer/config.json`` does not hold ``architecture``; "" when it does or
    when there is nothing to compare."""
    path = root / "transformer" / "config.json"
    if not architecture or not path.is_file():
        return ""
    try:
        held = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        return f"{path}: not a readable transformer config ({err})"
    if not isinstance(held, dict):
        return f"{path}: not a transformer config (a JSON {type(held).__name__})"

    def shape(c: dict[str, Any]) -> str:
        return (
            f"{c.get('num_layers')} layers, {c.get('num_attention_heads')} heads x "
            f"{c.get('attention_head_dim')}, ffn {c.get('ffn_dim')}"
        )

    def same(c: dict[str, Any]) -> bool:
        return all(held.get(k) == c[k] for k in ARCHITECTURE_KEYS)

    if same(CONFIGS[architecture]):
        return ""
    found = next((name for name, c in CONFIGS.items() if same(c)), "")
    fix = (
        f"set model.architecture={found}"
        if found
        else "point model.policy at a Wan2.1 folder of that size"
    )
    return (
        f"model.architecture: {architecture} ({shape(CONFIGS[architecture])}), but {path} "
        f"holds {found or 'no known Wan2.1 size'} ({shape(held)}); {fix}"
    )


def estimator_folder(name: str, options: dict[str, Any]) -> Folder | None:
    """The model_dir an adapter estimator opens (None for the estimators that ship); an unset
    model_dir is a folder named by the key, lacking every file."""
    if name not in ESTIMATOR_FILES:
        return None
    what, repo, files = ESTIMATOR_FILES[name]
    key = "rewards.estimator_options.model_dir"
    root = Path(options.get("model_dir") or f"<{key} is not set>")
    folder = Folder(root, f"{what}, the rewards' estimator", key, repo=repo)
    for file in files:
        folder.need(file, "its config" if file == "config.json" else "its weights")
    return folder


def _shipped_perception(name: str) -> bool:
    from geogrpo.perception.tinygeo import PRETRAINED_DIR

    return (PRETRAINED_DIR / name).is_dir()


def reward_model_folders(rewards: list[Any]) -> list[Folder]:
    """Folders of the reward models a recipe names by path: a quality scorer, a view judge."""
    out = []
    for spec in rewards:
        options = dict(spec.options)
        if spec.name == "quality" and options.get("scorer") in ("hpsv3", "videoalign"):
            out.append(external_scorer_folder(options))
            continue
        if spec.name == "quality":
            path, key = options.get("scorer"), f"rewards.{spec.name}.options.scorer"
        elif spec.name == "reconstruction" and list(options.get("weights", [1, 1, 1]))[1] > 0:
            path, key = options.get("judge", "tiny-quality"), f"rewards.{spec.name}.options.judge"
        else:
            continue
        if not isinstance(path, str) or _shipped_perception(path):
            continue
        root = Path(path)
        if key.endswith("scorer"):
            how = f"`geogrpo pretrain quality --out {root}`"
            folder = Folder(root, "the quality scorer, a saved TinyQualityScorer", key, how=how)
            folder.need("config.json", "its config")
            folder.need("model.safetensors", "its weights")
        elif (root / "config.json").is_file() and (root / "model.safetensors").is_file():
            continue  # a saved TinyQualityScorer
        else:
            folder = Folder(root, "the view judge, a Qwen-VL folder", key, repo=QWEN_VL_REPO)
            folder.need("config.json", "its config")
            folder.need_weights("", "model", "its weights")
            folder.need("tokenizer_config.json", "its tokenizer's config")
            folder.need("preprocessor_config.json", "its image processor's config")
        out.append(folder)
    return out


def external_scorer_folder(options: dict[str, Any]) -> Folder:
    """The files of the papers' quality models (``geogrpo.perception.quality``)."""
    key = "rewards.quality.options"
    if options["scorer"] == "hpsv3":
        checkpoint = Path(str(options.get("checkpoint_path", "models/HPSv3/HPSv3.safetensors")))
        folder = Folder(checkpoint.parent, "HPSv3", f"{key}.checkpoint_path", repo="MizzenAI/HPSv3")
        folder.need(checkpoint.name, "its reward head and LoRA weights")
        return folder
    # VideoReward's own files are read by VideoAlign's code; only its folder is checked here
    repo = Path(str(options.get("repo_dir", "models/VideoAlign")))
    code = Folder(repo, "VideoAlign's code", f"{key}.repo_dir", how="git clone KwaiVGI/VideoAlign")
    code.need("inference.py", "VideoVLMRewardInference")
    checkpoint = Path(str(options.get("checkpoint_dir", "models/VideoReward")))
    if not checkpoint.is_dir():
        code.missing.append((str(checkpoint), "VideoReward's folder (KwaiVGI/VideoReward)"))
    return code


def uses_estimator(config: Any) -> bool:
    """Whether the estimator's files must be there: the run builds it
    (:func:`~geogrpo.train.plan.builds_estimator`), or a reward that reads estimated geometry is
    named at all (a latent geometry reward, view_fidelity with estimated geometry)."""
    from geogrpo.train.plan import GEOMETRY_REWARDS, builds_estimator, resolve_conditioning

    names = {spec.name for spec in config.rewards.rewards}
    return bool(
        names & set(GEOMETRY_REWARDS)
        or ("view_fidelity" in names and config.rewards.reference_geometry == "estimated")
        or builds_estimator(config, resolve_conditioning(config)[0])
    )


def check_full_scale_files(config: Any) -> None:
    """Raise one error naming every file a run on local full-size weights lacks: the policy
    folder's (``model_index.json``, transformer, VAE, text encoder, tokenizer), the estimator's
    ``model_dir`` and the reward models named by path, each with where to get it, and a
    ``model.architecture`` the folder's transformer does not have. Reads only the config (a
    :class:`~geogrpo.train.config.GRPOConfig`) and the file system; shipped tiny policies pass.
    """
    policy = str(config.model.policy)
    if policy in SHIPPED:
        return
    root = Path(policy)
    folders = []
    random = policy.startswith(RANDOM_PREFIX)  # built here, nothing to read
    if not random and not (root / "policy.json").is_file():  # not save_pretrained's layout
        folders.append(wan_folder(root, config.model.architecture))
    if uses_estimator(config):
        options = dict(config.rewards.estimator_options)
        estimator = estimator_folder(config.rewards.estimator, options)
        folders += [estimator] if estimator is not None else []
    folders += reward_model_folders(list(config.rewards.rewards))
    folders = [f for f in folders if f.missing]
    mismatch = None if random else architecture_mismatch(root, config.model.architecture)
    if not folders:
        if mismatch:
            raise ValueError(f"full-scale pre-flight: nothing was loaded; {mismatch}")
        return
    count = sum(len(f.missing) for f in folders)
    lines = [f"full-scale pre-flight: nothing was loaded; {count} files are missing:"]
    for folder in folders:
        lines += folder.describe()
    lines.append(
        "Download them on a machine with internet and point the recipe at the folders "
        "(--set model.policy=/path, --set rewards.estimator_options.model_dir=/path)."
    )
    raise FileNotFoundError("\n".join(lines + ([mismatch] if mismatch else [])))
