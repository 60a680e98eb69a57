"""The full-scale path on tiny random configs: Wan VAE behind the autoencoder interface, UMT5 text
encoder, and a diffusers-format Wan2.1 folder loaded by ``VideoPolicy.from_pretrained``."""

import json
from dataclasses import replace

import pytest
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

from geogrpo.models.autoencoder import WanVideoAutoencoder
from geogrpo.models.policy import VideoPolicy
from geogrpo.models.text import UMT5TextEncoder
from geogrpo.models.wan import widen_patch_embedding

TEXT_DIM = 32


def tiny_wan_vae():
    torch.manual_seed(0)
    return AutoencoderKLWan(
        base_dim=8,
        z_dim=4,
        dim_mult=[1, 2, 2, 2],
        num_res_blocks=1,
        latents_mean=[0.1, -0.2, 0.0, 0.3],
        latents_std=[2.0, 1.0, 0.5, 1.5],
    )


def tiny_umt5():
    words = ["<pad>", "</s>", "<unk>", "a", "room", "the", "camera", "pans", "left", "."]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    config = UMT5Config(
        vocab_size=len(words), d_model=TEXT_DIM, d_kv=8, d_ff=64, num_layers=1, num_heads=4
    )
    return UMT5EncoderModel(config), tokenizer


def test_wan_vae_latent_layout_normalisation_and_unclamped_decoding():
    ae = WanVideoAutoencoder(tiny_wan_vae())
    video = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    z = ae.encode(video)
    assert z.shape == (1, 4, 2, 2, 2)  # 4k + 1 -> k + 1 frames, 8x down
    raw = ae.vae.encode(video).latent_dist.mode()
    mean, std = ae.latents_mean.view(1, -1, 1, 1, 1), ae.latents_std.view(1, -1, 1, 1, 1)
    torch.testing.assert_close(z, (raw - mean) / std)
    clamped, free = ae.decode(z), ae.decode(z, clamp=False)
    assert free.shape == clamped.shape == video.shape
    torch.testing.assert_close(free.clamp(-1, 1), clamped)
    with torch.no_grad():
        ae.vae.decoder.conv_out.weight.mul_(1000)  # saturate most output pixels
    saturated = float((ae.decode(z, clamp=False).abs() > 1).float().mean())
    grads = []
    for clamp in (True, False):  # the clamp zeroes the gradient of every saturated pixel
        leaf = z.detach().requires_grad_(True)
        ae.decode(leaf, clamp=clamp).sum().backward()
        grads.append(float(leaf.grad.abs().sum()))
    assert saturated > 0.5 and grads[1] > 2 * grads[0]
    with pytest.raises(ValueError, match="4k \\+ 1"):
        ae.encode(torch.zeros(1, 3, 4, 16, 16))


def test_umt5_encoder_zeroes_padding():
    model, tokenizer = tiny_umt5()
    enc = UMT5TextEncoder(model, tokenizer, max_length=8)
    states = enc(["the camera pans left .", "a room"])
    assert states.shape == (2, 8, TEXT_DIM)
    norms = states.detach().norm(dim=-1)  # [2, 8]: 5 and 2 words, then padding
    assert bool((norms[0, :5] > 0).all() and (norms[1, :2] > 0).all())
    assert float(norms[0, 5:].max()) == 0 and float(norms[1, 2:].max()) == 0


def tiny_wan_transformer() -> WanTransformer3DModel:
    """A one-block Wan2.1 T2V transformer on 4 latent channels (random weights)."""
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=4,
        out_channels=4,
        text_dim=TEXT_DIM,
        freq_dim=16,
        ffn_dim=32,
        num_layers=1,
    )


def test_diffusers_format_wan_folder_loads_as_a_policy(tmp_path):
    root = tmp_path / "Wan2.1-T2V-tiny-Diffusers"
    torch.manual_seed(0)
    transformer = tiny_wan_transformer()
    transformer.save_pretrained(root / "transformer")
    tiny_wan_vae().save_pretrained(root / "vae")
    model, tokenizer = tiny_umt5()
    model.save_pretrained(root / "text_encoder")
    tokenizer.save_pretrained(root / "tokenizer")
    (root / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    policy = VideoPolicy.from_pretrained(root)
    assert policy.conditioning.name == "t2v" and policy.latent_channels == 4
    cond = policy.prepare(["the camera pans left ."])
    x = torch.randn(policy.latent_shape(1, 5, 32, 32))
    v = policy.velocity(x, 0.5, cond)
    assert v.shape == x.shape
    cam = VideoPolicy.from_pretrained(root, conditioning="camera_v2v")
    assert any("camera_encoder" in n for n, _ in cam.transformer.named_parameters())
    # reproj_v2v widens the T2V patch embedding with zeros: the same velocity, whatever the
    # render and mask channels hold, until it trains
    reproj = VideoPolicy.from_pretrained(root, conditioning="reproj_v2v")
    assert reproj.transformer_config.in_channels == 4 + 4 + 4  # latents, render, hole mask
    f_lat, h, w = x.shape[2:]
    outs = [
        reproj.velocity(
            x,
            0.5,
            replace(
                cond,
                reproj_latents=torch.randn(1, 4, f_lat, h, w) * scale,
                reproj_mask=torch.rand(1, 4, f_lat, h, w),
            ),
        )
        for scale in (1.0, 100.0)
    ]
    assert torch.equal(outs[0], outs[1])
    torch.testing.assert_close(outs[0], v, atol=1e-6, rtol=1e-5)
    (root / "vae" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="vae/config.json"):
        VideoPolicy.from_pretrained(root)


def test_widened_patch_embedding_ignores_the_extra_channels_until_trained():
    torch.manual_seed(0)
    model = tiny_wan_transformer().eval()
    x, t, text = torch.randn(2, 4, 2, 8, 8), torch.tensor([300.0, 700.0]), torch.randn(2, 5, 32)

    def run(inputs):
        with torch.no_grad():
            return model(inputs, t, text, return_dict=False)[0]

    before, weight = run(x), model.patch_embedding.weight.detach().clone()
    assert widen_patch_embedding(model, 5) is model
    assert model.config.in_channels == 9 and model.patch_embedding.in_channels == 9
    extra = [torch.randn(2, 5, 2, 8, 8) * s for s in (0.0, 1.0, 1e3)]
    after = [run(torch.cat([x, e], dim=1)) for e in extra]
    assert all(torch.equal(a, after[0]) for a in after)
    torch.testing.assert_close(after[0], before, atol=1e-6, rtol=1e-5)
    # the new weights are zero, the old ones untouched, and all of them train
    widened = model.patch_embedding.weight.detach()
    assert torch.equal(widened[:, :4], weight) and float(widened[:, 4:].abs().max()) == 0
    assert model.patch_embedding.weight.requires_grad
    with pytest.raises(ValueError, match="extra_channels: expected an integer >= 0"):
        widen_patch_embedding(model, -1)
