"""The pretraining settings: every flag of ``geogrpo pretrain`` explains itself."""

import dataclasses

import pytest

from geogrpo.cli import build_parser
from geogrpo.pretrain import config

CONFIGS = {
    "autoencoder": config.AutoencoderPretrainConfig,
    "policy": config.PolicyPretrainConfig,
    "export": config.PolicyExportConfig,
    "tinygeo": config.TinyGeoPretrainConfig,
    "lgm": config.LGMPretrainConfig,
    "quality": config.QualityPretrainConfig,
}


@pytest.mark.parametrize("command", sorted(CONFIGS))
def test_every_flag_has_a_help_text(command, capsys, monkeypatch):
    fields = dataclasses.fields(CONFIGS[command])
    assert [f.name for f in fields if not f.metadata.get("help")] == []
    monkeypatch.setenv("COLUMNS", "10000")  # one line per flag: nothing wrapped
    with pytest.raises(SystemExit):
        build_parser().parse_args(["pretrain", command, "--help"])
    printed = capsys.readouterr().out
    for f in fields:
        assert f"{f.metadata['help']} (default: {f.default})" in printed, f.name


@pytest.mark.parametrize(
    "cls, field",
    [
        (cfg, field)
        for cfg, fields in {
            "AutoencoderPretrainConfig": ("n_train", "n_val", "frames", "size", "frame_channels"),
            "PolicyPretrainConfig": ("n_train", "frames", "size", "heads", "ffn_dim", "text_dim"),
            "TinyGeoPretrainConfig": ("n_train", "batch", "dim", "layers", "size"),
            "LGMPretrainConfig": ("n_train", "n_val", "hidden", "frames", "size"),
            "QualityPretrainConfig": ("n_train", "batch", "width", "frames", "size"),
        }.items()
        for field in fields
    ],
)
@pytest.mark.parametrize("bad", [0, -5])
def test_pretrain_sizes_and_counts_are_checked_by_name_before_any_work(cls, field, bad):
    with pytest.raises(ValueError, match=rf"^{field}: expected an integer >= 1"):
        getattr(config, cls)(**{field: bad})
