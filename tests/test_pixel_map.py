"""The pixel map (`tasks.real.pixels`): a fabricated CheXpert copy of the real layout loads from a read-only memory
map holding the very pixels, in the very order, that decoding into memory gives; training reads batches from it."""

from __future__ import annotations

import logging
import tracemalloc

import numpy as np
import pytest

from cxrbench.stacked_rows import StackedRows
from cxrbench.tasks.downstream.classifier import fit_classifier
from cxrbench.tasks.downstream.segmenter import fit_segmenter
from cxrbench.tasks.downstream.training import Schedule, predict
from cxrbench.tasks.real import pixels
from cxrbench.tasks.real.paper_suite import ChexpertClassification

from .fake_chexpert import FOLDER, fake_chexpert, jpeg

ROWS = 300
CONSTANT_ROW = 7


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """300 rows of CheXpert's train.csv with generated JPEGs; one frontal image is constant."""
    root = tmp_path_factory.mktemp("data")
    table = fake_chexpert(root, ROWS)
    frontal = [line.split(",")[0] for line in table.read_text().splitlines()[1:] if ",Frontal," in line]
    (root / FOLDER / frontal[CONSTANT_ROW]).write_bytes(jpeg(np.full((64, 64), 77, np.uint8)))
    return root


def _decoded(task: ChexpertClassification, root, part) -> np.ndarray:
    """What the pixels were before the map: every study decoded, scaled to [0, 1] as float32, constants dropped."""
    studies = {s.sample_id: s for s in task.all_studies(root)}
    images, _ = pixels.preprocess([studies[i] for i in part.sample_ids], task.meta.resolution, with_masks=False)
    return images.astype(np.float32) / 65535.0


def _bits(images: np.ndarray) -> np.ndarray:
    return np.asarray(images).view(np.uint32)


def test_the_map_holds_the_decoded_pixels_bit_for_bit_in_order(root, tmp_path, caplog):
    in_memory = ChexpertClassification().load(root, cache_dir=None)
    with caplog.at_level(logging.WARNING):
        mapped = ChexpertClassification().load(root, cache_dir=tmp_path / "cache")
    assert "left out 1 constant image(s)" in caplog.text
    task = ChexpertClassification()
    for name in ("train", "val", "test"):
        memory, mapped_part = getattr(in_memory, name), getattr(mapped, name)
        assert isinstance(mapped_part.images, np.memmap) and not mapped_part.images.flags.writeable
        assert mapped_part.images.dtype == np.float32 and mapped_part.images.shape[1:] == (224, 224)
        np.testing.assert_array_equal(mapped_part.sample_ids, memory.sample_ids)
        np.testing.assert_array_equal(mapped_part.labels, memory.labels)
        np.testing.assert_array_equal(_bits(mapped_part.images), _bits(memory.images))
        np.testing.assert_array_equal(_bits(mapped_part.images), _bits(_decoded(task, root, mapped_part)))
    assert sum(len(getattr(mapped, n)) for n in ("train", "val", "test")) == len(task.all_studies(root)) - 1


def test_a_second_load_opens_the_map_without_decoding(root, tmp_path, monkeypatch):
    first = ChexpertClassification().load(root, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(pixels, "read_image", _no_decoding)
    again = ChexpertClassification().load(root, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(_bits(again.train.images), _bits(first.train.images))
    with pytest.raises(ValueError, match="read-only"):
        again.train.images[0, 0, 0] = 0.5


def test_a_corrupted_map_is_rebuilt_from_the_chunks(root, tmp_path, monkeypatch, caplog):
    first = ChexpertClassification().load(root, cache_dir=tmp_path / "cache")
    expected = np.array(first.test.images)
    entry = next(p for p in (tmp_path / "cache" / pixels.MAP_STAGE[0]).rglob(pixels.IMAGES)
                 if np.load(p, mmap_mode="r").shape == expected.shape)
    data = bytearray(entry.read_bytes())
    data[-1] ^= 0xFF
    entry.write_bytes(bytes(data))
    monkeypatch.setattr(pixels, "read_image", _no_decoding)  # the chunks are intact: nothing is decoded again
    with caplog.at_level(logging.WARNING):
        again = ChexpertClassification().load(root, cache_dir=tmp_path / "cache")
    assert "is corrupted (images.npy does not match its hash)" in caplog.text
    np.testing.assert_array_equal(_bits(again.test.images), _bits(expected))


def _no_decoding(path, where):
    raise AssertionError(f"{where}: decoded {path} again")


def _map_of(tmp_path, array: np.ndarray) -> np.memmap:
    np.save(tmp_path / f"{array.dtype}.npy", array)
    return np.load(tmp_path / f"{array.dtype}.npy", mmap_mode="r")


def test_training_on_the_map_reads_batches_and_matches_training_in_memory(tmp_path):
    """The recipes give the same weights and predictions from the map as from memory, and never copy the map whole:
    the numpy memory they allocate (tracemalloc sees numpy's arrays) stays a fraction of its size. The same holds
    for a synthetic arm's training rows, the map stacked with rows in memory."""
    rng = np.random.default_rng(0)
    images = rng.random((1500, 32, 32), dtype=np.float32)
    labels = (rng.random((1500, 2)) < 0.3).astype(np.int8)
    masks = images > 0.8
    mapped, mapped_masks = _map_of(tmp_path, images), _map_of(tmp_path, masks)
    schedule = Schedule(steps=3, batch_size=8, learning_rate=1e-3)

    def classifier(source):
        return fit_classifier(source, labels, model="small_cnn", schedule=schedule, seed=0, device="cpu",
                              real_rows=np.arange(1000))

    def segmenter(source, source_masks):
        return fit_segmenter(source, source_masks, channels=(4, 8), schedule=schedule, seed=0, device="cpu")

    def stacked(on_disk, in_memory):  # a synthetic arm's rows: the real map, then synthetic rows (`SampleSet.concat`)
        return StackedRows([on_disk[:1000], np.array(in_memory[1000:])])

    from_memory = [classifier(images), segmenter(images, masks)]  # first: what they import is not counted below
    stacked_images, stacked_masks = stacked(mapped, images), stacked(mapped_masks, masks)
    tracemalloc.start()
    try:
        from_map = [classifier(mapped), segmenter(mapped, mapped_masks)]
        from_stack = [classifier(stacked_images), segmenter(stacked_images, stacked_masks)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < images.nbytes / 4, f"{peak:,} bytes allocated while training on a map of {images.nbytes:,}"
    for a, b in zip(from_map + from_stack, from_memory + from_memory, strict=True):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert x.equal(y), name
        np.testing.assert_array_equal(predict(a, mapped[:40, None], device="cpu"),
                                      predict(b, images[:40, None], device="cpu"))
