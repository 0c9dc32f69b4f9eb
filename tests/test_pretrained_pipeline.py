"""The pretrained-pipeline adapter, on a tiny Stable Diffusion pipeline the test builds and saves itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cxrbench.conditions import LabelCondition, MaskCondition
from cxrbench.errors import ConfigError, GeneratorError
from cxrbench.generators.pretrained import to_grey
from cxrbench.registry import generator_class, get_task


def _tiny_clip_tokenizer(directory):
    """A character-level CLIP BPE vocabulary: no merges, every character a token."""
    from transformers import CLIPTokenizer

    characters = [chr(c) for c in range(33, 127)]
    tokens = characters + [c + "</w>" for c in characters] + ["<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"), model_max_length=77)


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    root = tmp_path_factory.mktemp("pipeline")
    torch.manual_seed(0)
    tokenizer = _tiny_clip_tokenizer(root)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, intermediate_size=32,
                                        num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77))
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 16),
                                layers_per_block=1, cross_attention_dim=16, attention_head_dim=4, norm_num_groups=8,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=8)
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
                                       scheduler=DDIMScheduler(clip_sample=False, steps_offset=1), safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
    pipeline.save_pretrained(root / "saved")
    return root / "saved"


def test_a_saved_pipeline_generates_grey_images_at_the_task_resolution(tiny_pipeline):
    task = get_task("phantom_cls")
    generator = generator_class("pretrained_pipeline")(task.meta, path=str(tiny_pipeline), steps=2)
    conditions = [LabelCondition(labels={name: int(i == j) for j, name in enumerate(task.meta.labels)})
                  for i in range(3)]
    images = generator.checked_generate(conditions, seed=1, batch_size=2)
    assert images.shape == (3, task.meta.resolution, task.meta.resolution)
    np.testing.assert_array_equal(images, generator.checked_generate(conditions, seed=1, batch_size=2))
    assert images.std() > 0 and not np.array_equal(images, generator.checked_generate(conditions, seed=2, batch_size=2))
    assert generator.revision() == generator_class("pretrained_pipeline")(task.meta, path=str(tiny_pipeline),
                                                                          steps=2).revision()


def test_the_revision_changes_with_the_weights(tiny_pipeline, tmp_path):
    import shutil

    meta = get_task("phantom_cls").meta
    copy = shutil.copytree(tiny_pipeline, tmp_path / "copy")
    before = generator_class("pretrained_pipeline")(meta, path=str(copy)).revision()
    weights = next(copy.glob("unet/*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    assert generator_class("pretrained_pipeline")(meta, path=str(copy)).revision() != before


def test_a_missing_folder_or_option_is_a_clear_error(tmp_path):
    meta = get_task("phantom_cls").meta
    with pytest.raises(ConfigError, match="generator option pretrained_pipeline.path is missing: a local folder"):
        generator_class("pretrained_pipeline")(meta)
    with pytest.raises(GeneratorError, match=f"folder {tmp_path / 'nowhere'} has no model_index.json"):
        generator_class("pretrained_pipeline")(meta, path=str(tmp_path / "nowhere"))


def test_mask_conditions_are_refused(tiny_pipeline):
    meta = get_task("phantom_seg").meta
    generator = generator_class("pretrained_pipeline")(meta, path=str(tiny_pipeline))
    mask = MaskCondition(labels={"pneumothorax": 1}, mask=np.zeros((64, 64), bool), source_id="x")
    with pytest.raises(GeneratorError, match="not masks"):
        generator.generate([mask], seed=0)


def test_rgb_becomes_luma_and_is_area_resized():
    rgb = np.zeros((1, 4, 4, 3), np.float32)
    rgb[..., 1] = 1.0
    grey = to_grey(rgb, 2)
    np.testing.assert_allclose(grey, np.full((1, 2, 2), 0.587, np.float32), rtol=1e-6)
