"""A tiny autoencoder run, shared by the autoencoder tests and the policies trained on it."""

import pytest

from geogrpo.pretrain.autoencoder import pretrain_autoencoder
from geogrpo.pretrain.config import AutoencoderPretrainConfig
from tests.pretrain.runs import SMALL


@pytest.fixture(scope="session")
def autoencoder_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    cfg = AutoencoderPretrainConfig(
        out=str(root / "ae"),
        data_dir=str(root / "data"),
        n_train=6,
        n_val=2,
        steps=60,
        batch_frames=8,
        crop=32,
        widths=(8, 8, 8),
        frame_channels=4,
        eval_every=30,
        stats_clips=6,
        **SMALL,
    )
    return root, cfg, pretrain_autoencoder(cfg)
