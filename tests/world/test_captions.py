"""The caption grammar: within the text encoder's word limit on every split, train and val
captions unchanged, photo objects shortened only where the long form does not fit (issue 22)."""

import hashlib
from dataclasses import replace

import pytest
import torch

from geogrpo.world.datasets import (
    _CAMERA_PHRASES,
    _SPEED_WORDS,
    CAPTION_MAX_WORDS,
    SPLITS,
    MultiViewPairs,
    TextToVideoClips,
    _save_cached,
    caption_for,
    caption_words,
    describe_scene,
    scene_for,
)
from geogrpo.world.scene import Motion
from geogrpo.world.textures import PHOTOS

N = 200  # items of each kind per split, plus N scenes with moving objects


def _captions(split: str) -> list[str]:
    t2v, pairs = TextToVideoClips(split, N), MultiViewPairs(split, N)
    return (
        [t2v.caption(i) for i in range(N)]
        + [pairs.caption(i) for i in range(N)]
        + [describe_scene(scene_for(split, i, dynamic=True)) for i in range(N)]
    )


@pytest.mark.parametrize("split", sorted(SPLITS))
def test_every_caption_of_every_split_is_within_the_word_limit(split):
    longest = max(len(caption_words(c)) for c in _captions(split))
    assert longest <= CAPTION_MAX_WORDS, (split, longest)


def test_train_val_and_heldout_shapes_captions_are_the_ones_the_shipped_models_were_trained_on():
    # sha256 of these captions written before the photo short form existed (commit c781e28)
    blob = "\n".join(
        [TextToVideoClips("train", 100).caption(i) for i in range(100)]
        + [TextToVideoClips("val", 100).caption(i) for i in range(100)]
        + [MultiViewPairs("train", 100).caption(i) for i in range(100)]
        + [MultiViewPairs("val", 100).caption(i) for i in range(100)]
        + [TextToVideoClips("heldout_shapes", 100).caption(i) for i in range(100)]
    )
    digest = hashlib.sha256(blob.encode()).hexdigest()
    assert digest == "16a44135e891e3b13e5a7fd3110fa8040253d196970a34294560ea4dfba8fe3e"
    assert TextToVideoClips("val", 1).caption(0) == (
        "A room with a moving yellow mottled ball, a moving purple striped box and a grey "
        "striped box. The camera orbits left."
    )


def test_photo_objects_take_the_short_form_only_where_the_long_one_does_not_fit():
    scene = scene_for("heldout_photo", 1)  # three photo objects: the long form fits
    assert describe_scene(scene) == (
        "A room with a pillar covered in a astronaut photo, a ball covered in a coffee photo and "
        "a pillar covered in a hubble deep field photo."
    )
    assert describe_scene(scene, 20) == (
        "A room with an astronaut photo pillar, a coffee photo ball and a hubble photo pillar."
    )
    with pytest.raises(ValueError, match="short form"):
        describe_scene(scene, 10)


def test_the_longest_photo_room_the_generator_can_make_fits_with_the_longest_camera_sentence():
    # six objects (the generator's most), two moving (its most), the longest photo name
    scene = scene_for("heldout_photo", 2)
    objects = [p for p in scene.primitives if p.kind != "plane"]
    assert len(objects) == 6
    planes = tuple(p for p in scene.primitives if p.kind == "plane")
    photo = max(PHOTOS, key=lambda n: len(n.split("_")))
    worst = tuple(
        replace(
            p,
            texture=replace(p.texture, photo=photo),
            motion=Motion("linear", (0.5, 0.0, 0.0)) if i < 2 else Motion(),
        )
        for i, p in enumerate(objects)
    )
    # the longest camera sentence: "The camera X, then Y." with the longest speed + phrase twice
    phrases = [f"{s}{c}" for s in _SPEED_WORDS for c in _CAMERA_PHRASES]
    phrase = max(phrases, key=lambda t: len(caption_words(t)))
    camera = f"The camera {phrase}, then {phrase}."
    assert len(caption_words(camera)) == 11
    caption = caption_for(replace(scene, primitives=planes + worst), camera)
    assert len(caption_words(caption)) <= CAPTION_MAX_WORDS and caption.endswith(camera)


def test_rendered_items_carry_the_caption_drawn_without_rendering():
    for cls, index in ((TextToVideoClips, 2), (MultiViewPairs, 2)):
        ds = cls("heldout_photo", 3, num_frames=2, size=8)
        item = ds[index]
        assert item["caption"] == ds.caption(index) and " photo ball" in item["caption"]
        assert len(caption_words(item["caption"])) <= CAPTION_MAX_WORDS


def test_a_cached_item_reads_its_caption_in_the_grammar_of_today(tmp_path):
    ds = TextToVideoClips("heldout_photo", 3, num_frames=1, size=8, cache_dir=tmp_path)
    item = ds[2]
    stale = {**item, "caption": "A room with a ball covered in a rocket photo, " * 9}
    _save_cached(tmp_path, ds.kind, 2, stale)  # as cached before the short form existed
    again = ds[2]
    assert again["caption"] == item["caption"] == ds.caption(2)
    assert torch.equal(again["video"], item["video"])
