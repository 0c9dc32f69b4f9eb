"""The reference latent diffusion generators with the tiny preset: contract, determinism, conditioning, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from cxrbench.conditions import LabelCondition, MaskCondition, TextCondition
from cxrbench.errors import ConfigError, GeneratorError
from cxrbench.generators.ldm.config import resolve_config
from cxrbench.generators.ldm.context import build_tokenizer, tokenize
from cxrbench.generators.prompts import prompt_for
from cxrbench.registry import generator_class, get_task


def _fitted(task_name: str, generator_name: str, tmp_path_factory):
    task = get_task(task_name)
    splits = task.load(None, train_size=16)
    generator = generator_class(generator_name)(task.meta, preset="tiny")
    generator.fit(splits.train, seed=0, workdir=tmp_path_factory.mktemp("work"))
    return task, splits, generator


@pytest.fixture(scope="module")
def mask_ldm(tmp_path_factory):
    return _fitted("phantom_seg", "ldm_mask", tmp_path_factory)


@pytest.fixture(scope="module")
def text_ldm(tmp_path_factory):
    return _fitted("phantom_cls", "ldm_text", tmp_path_factory)


@pytest.mark.parametrize("which", ["mask_ldm", "text_ldm"])
def test_generate_gives_one_image_per_condition_in_range_and_is_seeded(which, request):
    task, splits, generator = request.getfixturevalue(which)
    conditions = task.conditions(splits.train, 5, seed=1)
    first = generator.checked_generate(conditions, seed=7, batch_size=2)
    assert first.shape == (5, task.meta.resolution, task.meta.resolution) and first.dtype == np.float32
    assert 0 <= first.min() and first.max() <= 1 and first.std() > 0
    np.testing.assert_array_equal(first, generator.checked_generate(conditions, seed=7, batch_size=2))
    assert not np.array_equal(first, generator.checked_generate(conditions, seed=8, batch_size=2))
    # an image's noise is its own: the batch it shares does not change it beyond float rounding
    np.testing.assert_allclose(first, generator.checked_generate(conditions, seed=7, batch_size=5), atol=1e-4)


@pytest.mark.parametrize("which", ["mask_ldm", "text_ldm"])
def test_save_load_round_trip_gives_identical_samples(which, request, tmp_path):
    task, splits, generator = request.getfixturevalue(which)
    conditions = task.conditions(splits.train, 3, seed=2)
    generator.save(tmp_path)
    assert (tmp_path / "denoiser" / "config.json").is_file() and (tmp_path / "autoencoder" / "config.json").is_file()
    restored = generator_class(generator.meta.name)(task.meta, preset="tiny")
    restored.load(tmp_path)
    np.testing.assert_array_equal(generator.generate(conditions, seed=3), restored.generate(conditions, seed=3))


def test_the_mask_reaches_the_model(mask_ldm):
    task, splits, generator = mask_ldm
    size = task.meta.resolution
    empty = np.zeros((size, size), bool)
    full = empty.copy()
    full[: size // 2, : size // 3] = True
    conditions = [MaskCondition(labels={"pneumothorax": 0}, mask=empty, source_id="a"),
                  MaskCondition(labels={"pneumothorax": 1}, mask=full, source_id="a")]
    same_noise = [generator.generate([c], seed=4)[0] for c in conditions]
    assert np.abs(same_noise[0] - same_noise[1]).max() > 1e-3


def test_labels_and_prompts_reach_the_model(text_ldm):
    task, _, generator = text_ldm
    none = {name: 0 for name in task.meta.labels}
    one = {**none, task.meta.labels[0]: 1}
    outputs = [generator.generate([c], seed=4)[0] for c in
               (LabelCondition(labels=none), LabelCondition(labels=one),
                TextCondition(labels=one, prompt="chest x-ray"))]
    assert np.abs(outputs[0] - outputs[1]).max() > 1e-3
    assert np.abs(outputs[1] - outputs[2]).max() > 1e-3  # same labels, other prompt


def test_the_mask_model_refuses_label_conditions(mask_ldm):
    task, _, generator = mask_ldm
    with pytest.raises(GeneratorError, match="needs mask conditions, got a label condition"):
        generator.generate([LabelCondition(labels={"pneumothorax": 1})], seed=0)


def test_generating_before_fitting_is_a_clear_error():
    task = get_task("phantom_cls")
    with pytest.raises(GeneratorError, match="ldm_text must be fitted or loaded"):
        generator_class("ldm_text")(task.meta, preset="tiny").generate([LabelCondition(labels={})], seed=0)


def test_prompt_template_reads_like_a_report_line():
    assert prompt_for({"pleural_effusion": 1, "cardiomegaly": 0}) == "chest x-ray with pleural effusion"
    assert prompt_for({"a": 1, "b": 1, "c": 1}) == "chest x-ray with a, b and c"
    assert prompt_for({"a": 0}) == "chest x-ray with no finding"


def test_unseen_words_become_unknown_tokens_and_prompts_are_cut_to_length():
    tokenizer = build_tokenizer(["chest x-ray with cardiomegaly"])
    ids, mask = tokenize(tokenizer, ["chest x-ray with dragons", "chest " * 20], length=8)
    assert ids.shape == (2, 8) and mask[1].all()
    assert tokenizer.token_to_id("[UNK]") in ids[0].tolist()


def test_presets_resolve_by_resolution_and_reject_unknown_names():
    ldm = generator_class("ldm_text")
    assert resolve_config(ldm.checked_options({}), 64).preset == "cpu"
    assert resolve_config(ldm.checked_options({}), 256).preset == "paper"
    assert resolve_config(ldm.checked_options({"preset": "tiny", "denoiser": {"steps": 9}}), 64).denoiser.steps == 9
    with pytest.raises(ConfigError, match="generator option ldm_text.preset: Input should be 'tiny', 'cpu' or "
                                          "'paper', got 'huge'"):
        ldm.checked_options({"preset": "huge"})
    with pytest.raises(ConfigError, match="generator option ldm_text.vae is unknown; ldm_text takes autoencoder, "):
        ldm.checked_options({"vae": {}})


def test_the_revision_follows_the_config():
    meta = get_task("phantom_cls").meta
    tiny = generator_class("ldm_text")(meta, preset="tiny")
    assert tiny.revision() == generator_class("ldm_text")(meta, preset="tiny").revision()
    assert tiny.revision() != generator_class("ldm_text")(meta, preset="tiny", sampler={"steps": 4}).revision()


def test_sampler_settings_reuse_the_fit_but_model_settings_do_not():
    from cxrbench.plan import fit_key

    meta = get_task("phantom_cls").meta
    base = generator_class("ldm_text")(meta, preset="tiny")
    resampled = generator_class("ldm_text")(meta, preset="tiny", sampler={"guidance_scale": 4.0})
    retrained = generator_class("ldm_text")(meta, preset="tiny", denoiser={"steps": 5})
    assert fit_key(base, "data") == fit_key(resampled, "data") != fit_key(retrained, "data")
    assert base.revision() != resampled.revision()


def test_denoiser_checkpoints_are_called_at_their_steps_and_leave_training_as_it_was():
    """The quality curves grade the model at each checkpoint (with the EMA weights swapped in); training then goes on
    from the raw weights, so a run with checkpoints ends with exactly the weights of a run without."""
    import torch

    from cxrbench.generators.ldm.denoiser import train_denoiser
    from cxrbench.generators.ldm.generator import untrained_denoising
    from cxrbench.generators.ldm.training import Trainer

    task = get_task("phantom_seg")
    train = task.load(None, train_size=8).train
    settings = resolve_config(generator_class("ldm_mask").Options(preset="tiny", denoiser={"steps": 6}), 64)

    def trained(checkpoints):
        trainer = Trainer("cpu", 0)
        torch.manual_seed(0)
        model, latents, conditions = untrained_denoising(settings, task.meta, train, trainer, uses_mask=True)
        train_denoiser(model, latents, conditions, trainer, checkpoints=checkpoints(model))
        return model

    seen: dict[int, list[torch.Tensor]] = {}

    def recording(model):
        def record(step):
            seen[step] = [p.detach().clone() for p in model.denoiser.parameters()]
        return {2: lambda: record(2), 4: lambda: record(4)}

    with_checkpoints, without = trained(recording), trained(lambda model: None)
    assert sorted(seen) == [2, 4]
    assert not all(torch.equal(a, b) for a, b in zip(seen[2], seen[4]))
    for a, b in zip(with_checkpoints.denoiser.parameters(), without.denoiser.parameters()):
        assert torch.equal(a, b)
