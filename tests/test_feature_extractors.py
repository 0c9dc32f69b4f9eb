"""Feature extractors: the in-domain encoder (trained once, cached, its own seed), torchxrayvision's DenseNet and a
Hugging Face folder from local files, their refusals of bad files, and cached features.

Short training schedules keep it quick: an encoder trained for a few steps already tells phantoms from noise."""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from cxrbench import registry
from cxrbench.agreement import judge
from cxrbench.cache import Cache, file_sha256
from cxrbench.errors import ConfigError, DataError
from cxrbench.feature_extractors import extractor_from_spec
from cxrbench.features import cached_features
from cxrbench.fidelity.extractor import FeatureExtractor
from cxrbench.fidelity.identity import ExtractorIdentity
from cxrbench.fidelity.metrics import fid
from cxrbench.plan import _refuse_reserved_seeds
from cxrbench.protocol import FEATURE_SEED, JUDGE_SEED
from cxrbench.real_trained import real_trained_key
from cxrbench.registry import get_task
from cxrbench.task_data import load_splits
from cxrbench.tasks.downstream.segmenter import build_segmenter, segmenter_features

DATA_KEY = "feature-test-data"


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def quick(monkeypatch):
    """Both phantom tasks' recipes at a few steps, and a count of every training."""
    trained = []
    for name, steps in (("phantom_cls", 20), ("phantom_seg", 4)):
        cls = type(get_task(name))
        monkeypatch.setattr(cls, "schedule", replace(cls.schedule, steps=steps))
        original = cls.train_model

        def counted(self, train, *, seed, device, _original=original):
            trained.append((self.meta.name, seed))
            return _original(self, train, seed=seed, device=device)

        monkeypatch.setattr(cls, "train_model", counted)
    return trained


@pytest.fixture(scope="module")
def phantom_cls():
    return get_task("phantom_cls"), load_splits("phantom_cls", None, 60)


def _in_domain(task, splits, cache):
    return extractor_from_spec("in_domain", task=task, real=splits, data_key=DATA_KEY, cache=cache, device="cpu")


def test_the_in_domain_encoder_trains_once_with_its_own_seed_and_is_read_from_the_cache(quick, phantom_cls, tmp_path):
    task, splits = phantom_cls
    first = _in_domain(task, splits, Cache(tmp_path))
    second = _in_domain(task, splits, Cache(tmp_path))
    assert quick == [("phantom_cls", FEATURE_SEED)]
    assert first.identity == second.identity
    assert first.identity.name == "in_domain" and first.identity.dim == 64
    images = splits.test.images[:40]
    features = first.embed(images)
    assert features.shape == (40, 64) and features.dtype == np.float32
    np.testing.assert_array_equal(features, second.embed(images))
    np.testing.assert_array_equal(features, first.embed(images))


def test_the_encoders_hash_is_its_cached_weights_and_they_are_not_the_judges(quick, phantom_cls, tmp_path):
    task, splits = phantom_cls
    cache = Cache(tmp_path)
    encoder = _in_domain(task, splits, cache)
    weights = cache.path("encoder", real_trained_key(task, DATA_KEY, stage="encoder", seed=FEATURE_SEED))
    assert encoder.identity.weights_sha256 == file_sha256(weights / "encoder.safetensors")
    judge(task, splits, DATA_KEY, cache, device="cpu")
    judged = cache.path("judge", real_trained_key(task, DATA_KEY, stage="judge", seed=JUDGE_SEED))
    assert file_sha256(judged / "judge.safetensors") != encoder.identity.weights_sha256
    assert quick == [("phantom_cls", FEATURE_SEED), ("phantom_cls", JUDGE_SEED)]


def test_the_judges_cache_key_is_the_one_it_always_had():
    """Judges cached before the shared code keep their keys: recorded from main's agreement.judge for this recipe."""

    class FixedRecipe:
        def recipe(self):
            return {"model": "fixed", "steps": 3}

    key = real_trained_key(FixedRecipe(), "data-key", stage="judge", seed=JUDGE_SEED)
    assert key == "5aa5c9c2be85b60433057ded94e8d737"


def test_the_judge_reuses_its_cached_weights(quick, phantom_cls, tmp_path):
    task, splits = phantom_cls
    first = judge(task, splits, DATA_KEY, Cache(tmp_path), device="cpu")
    second = judge(task, splits, DATA_KEY, Cache(tmp_path), device="cpu")
    assert quick == [("phantom_cls", JUDGE_SEED)]
    for name, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[name])


def test_in_domain_features_tell_phantoms_from_noise(quick, phantom_cls, tmp_path):
    """FID between the real test images and uniform noise is far above FID between two halves of the test set."""
    task, splits = phantom_cls
    encoder = _in_domain(task, splits, Cache(tmp_path))
    test = splits.test.images[:400]
    noise = np.random.default_rng(0).random((200, *test.shape[1:]), dtype=np.float32)
    real = encoder.embed(test)
    halves = fid(real[:200], real[200:])
    against_noise = fid(real[:200], encoder.embed(noise))
    assert against_noise > 20 * halves, (halves, against_noise)


def test_the_in_domain_encoder_refuses_images_of_another_size_or_range(quick, phantom_cls, tmp_path):
    task, splits = phantom_cls
    encoder = _in_domain(task, splits, Cache(tmp_path))
    with pytest.raises(DataError, match="takes images of 64 x 64 pixels, got 32 x 32"):
        encoder.embed(np.zeros((2, 32, 32), np.float32))
    with pytest.raises(DataError, match=r"in \[0, 1\]; these range over \[0, 2\]"):
        encoder.embed(np.stack([np.zeros((64, 64), np.float32), np.full((64, 64), 2.0, np.float32)]))
    with pytest.raises(DataError, match=r"greyscale images \(N, H, W\)"):
        encoder.embed(np.zeros((2, 64, 64, 3), np.float32))


def test_the_segmentation_encoder_reads_the_unet_bottleneck():
    """The hook's features are the bottom layer's activations, reached here by MONAI's nesting path, averaged."""
    torch.manual_seed(0)
    net = build_segmenter((8, 16, 32, 64)).eval()
    images = np.random.default_rng(1).random((3, 64, 64), dtype=np.float32)
    with torch.no_grad():
        x = torch.from_numpy(images)[:, None]
        level1 = net.model[1].submodule
        level2 = level1[1].submodule
        x = level2[0](level1[0](net.model[0](x)))
        bottom = level2[1].submodule(x)
    assert bottom.shape == (3, 64, 8, 8)  # channels[-1] at 64 / 2**3 pixels: the deepest level
    np.testing.assert_allclose(segmenter_features(net, images, device="cpu"), bottom.mean(dim=(2, 3)).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_the_segmentation_task_embeds_through_its_encoder(quick, tmp_path):
    task = get_task("phantom_seg")
    splits = load_splits("phantom_seg", None, 30)
    encoder = _in_domain(task, splits, Cache(tmp_path))
    assert quick == [("phantom_seg", FEATURE_SEED)]
    assert encoder.identity.dim == task.channels[-1]
    assert encoder.embed(splits.test.images[:5]).shape == (5, task.channels[-1])


def test_every_task_implements_embed():
    """Task.embed is abstract: a task without it could not be instantiated; every registered one can."""
    for name in registry.task_names():
        cls = registry.task_class(name)
        assert not inspect.isabstract(cls), (name, cls.__abstractmethods__)
        assert "embed" not in getattr(cls, "__abstractmethods__", ())


def test_the_feature_seed_is_refused_as_a_run_seed():
    with pytest.raises(ConfigError, match=f"include {FEATURE_SEED}, which the protocol reserves.*feature encoder"):
        _refuse_reserved_seeds(list(range(FEATURE_SEED - 1, FEATURE_SEED + 2)))


def test_a_bad_spec_is_refused_naming_it(phantom_cls, tmp_path):
    task, splits = phantom_cls
    for spec in ("inception", "xrv:", "hf:", ""):
        with pytest.raises(ConfigError, match=f"feature extractor {spec!r}: expected 'in_domain', 'xrv:"):
            extractor_from_spec(spec, task=task, real=splits, data_key=DATA_KEY, cache=Cache(tmp_path), device="cpu")


# torchxrayvision's DenseNet from a local state dict


@pytest.fixture(scope="module")
def xrv_weights(tmp_path_factory):
    import torchxrayvision as xrv

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("xrv") / "densenet.pt"
    torch.save(xrv.models.DenseNet(weights=None, num_classes=18).state_dict(), path)
    return path


def _from_spec(spec: str, tmp_path: Path) -> FeatureExtractor:
    return extractor_from_spec(spec, task=None, real=None, data_key="", cache=Cache(tmp_path), device="cpu")


def test_xrv_densenet_gives_pooled_features2_of_resized_normalised_images(xrv_weights, tmp_path):
    import torch.nn.functional as F
    import torchxrayvision as xrv

    extractor = _from_spec(f"xrv:{xrv_weights}", tmp_path)
    assert extractor.identity == ExtractorIdentity(name="xrv_densenet", kind="torchxrayvision DenseNet-121 features2",
                                                   weights_sha256=file_sha256(xrv_weights), dim=1024,
                                                   input_size=(224, 224))
    images = np.random.default_rng(0).random((2, 64, 64), dtype=np.float32)
    features = extractor.embed(images)
    assert features.shape == (2, 1024)
    np.testing.assert_array_equal(features, extractor.embed(images))
    reference = xrv.models.DenseNet(weights=None)
    reference.load_state_dict(torch.load(xrv_weights, weights_only=True))
    scaled = torch.from_numpy(images * 2048 - 1024)[:, None]  # xrv's [-1024, 1024]
    with torch.no_grad():
        expected = reference.eval().features2(F.interpolate(scaled, size=224, mode="bilinear", antialias=True))
    np.testing.assert_allclose(features, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_xrv_weights_that_are_missing_linked_or_not_a_densenet_are_refused(xrv_weights, tmp_path):
    link = tmp_path / "link.pt"
    link.symlink_to(xrv_weights)
    other = tmp_path / "small_cnn.pt"
    torch.save(get_task("phantom_cls").untrained_model().state_dict(), other)
    pickled = tmp_path / "pickled.pt"
    torch.save(torch.nn.Linear(2, 2), pickled)
    text = tmp_path / "notes.pt"
    text.write_text("not weights")
    for path, expected in [(tmp_path / "absent.pt", "no such file"),
                           (link, "is a symbolic link"),
                           (other, "not a state dict of torchxrayvision's one-channel DenseNet-121: missing "),
                           (pickled, "a pickled whole model is refused"),
                           (text, "not a state dict that torch reads")]:
        with pytest.raises(ConfigError, match=f"xrv DenseNet weights {path}: .*{expected}"):
            _from_spec(f"xrv:{path}", tmp_path)


def test_xrv_weights_of_another_densenet_name_the_wrong_shape(tmp_path):
    import torchxrayvision as xrv

    path = tmp_path / "three_channels.pt"
    torch.save(xrv.models.DenseNet(weights=None, in_channels=3).state_dict(), path)
    with pytest.raises(ConfigError, match=r"features.conv0.weight has shape \(64, 3, 7, 7\), expected \(64, 1, 7, 7\)"):
        _from_spec(f"xrv:{path}", tmp_path)


# a Hugging Face model folder


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("hf") / "tiny-vit"
    config = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       image_size=32, patch_size=8)
    ViTModel(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_a_hugging_face_folder_gives_the_pooled_output(vit_folder, tmp_path):
    from transformers import ViTModel

    extractor = _from_spec(f"hf:{vit_folder}", tmp_path)
    assert (extractor.identity.name, extractor.identity.dim, extractor.identity.input_size) == ("hf:tiny-vit", 32,
                                                                                                (32, 32))
    images = np.random.default_rng(0).random((3, 64, 64), dtype=np.float32)
    features = extractor.embed(images)
    assert features.shape == (3, 32)
    model = ViTModel.from_pretrained(vit_folder).eval()
    pixels = torch.nn.functional.interpolate(torch.from_numpy(images)[:, None], size=32, mode="bilinear",
                                             antialias=False).expand(-1, 3, -1, -1)
    with torch.no_grad():
        expected = model(pixel_values=(pixels - 0.5) / 0.5).pooler_output  # ViT's processor: mean 0.5, std 0.5
    np.testing.assert_allclose(features, expected.numpy(), atol=2e-2)


def test_the_hugging_face_hash_follows_the_weights(vit_folder, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(vit_folder, copy)
    same = _from_spec(f"hf:{copy}", tmp_path).identity.weights_sha256
    assert same == _from_spec(f"hf:{vit_folder}", tmp_path).identity.weights_sha256
    (copy / "model.safetensors").write_bytes((copy / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\1")
    assert _from_spec(f"hf:{copy}", tmp_path).identity.weights_sha256 != same


def test_a_bad_hugging_face_folder_is_refused(vit_folder, tmp_path):
    import shutil

    no_config = tmp_path / "no-config"
    shutil.copytree(vit_folder, no_config)
    (no_config / "config.json").unlink()
    linked_file = tmp_path / "linked-file"
    shutil.copytree(vit_folder, linked_file)
    (linked_file / "model.safetensors").unlink()
    (linked_file / "model.safetensors").symlink_to(vit_folder / "model.safetensors")
    linked_folder = tmp_path / "linked-folder"
    linked_folder.symlink_to(vit_folder)
    broken = tmp_path / "broken"
    shutil.copytree(vit_folder, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    for folder, expected in [(tmp_path / "absent", "no such folder"),
                             (no_config, "no config.json"),
                             (linked_file, "model.safetensors is a symbolic link"),
                             (linked_folder, "is a symbolic link"),
                             (broken, "transformers cannot load it")]:
        with pytest.raises(ConfigError, match=f"Hugging Face model folder {folder}: .*{expected}"):
            _from_spec(f"hf:{folder}", tmp_path)


# cached features


class CountingExtractor(FeatureExtractor):
    """Mean and spread of each image, counting the images it embeds."""

    def __init__(self) -> None:
        self.embedded = 0
        self.identity = ExtractorIdentity(name="counting", kind="moments", weights_sha256="0" * 64, dim=2,
                                          input_size=(8, 8))

    def _embed_batch(self, images: np.ndarray) -> np.ndarray:
        self.embedded += len(images)
        return np.stack([images.mean(axis=(1, 2)), images.std(axis=(1, 2))], axis=1)


def test_features_are_embedded_once_per_extractor_and_source(tmp_path):
    cache, extractor = Cache(tmp_path), CountingExtractor()
    images = np.random.default_rng(0).random((70, 8, 8), dtype=np.float32)
    first = cached_features(extractor, images, source_key="data/test", cache=cache)
    again = cached_features(extractor, images, source_key="data/test", cache=cache)
    assert extractor.embedded == 70
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first[:, 0], images.mean(axis=(1, 2)), rtol=1e-6)
    cached_features(extractor, images, source_key="synthetic/abc", cache=cache)
    assert extractor.embedded == 140
    other = CountingExtractor()
    other.identity = other.identity.model_copy(update={"weights_sha256": "1" * 64})
    cached_features(other, images, source_key="data/test", cache=cache)
    assert other.embedded == 70
