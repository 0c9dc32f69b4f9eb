"""The downstream recipes: seeded training is repeatable, and the paper-scale DenseNet builds offline."""

import numpy as np

from cxrbench.tasks.downstream.classifier import build_classifier, fit_classifier
from cxrbench.tasks.downstream.training import Schedule, predict


def test_torchxrayvision_densenet_builds_without_weights_and_predicts_each_label():
    import torch

    net = build_classifier("xrv_densenet", 4)
    assert sum(p.numel() for p in net.parameters()) > 6_000_000
    with torch.inference_mode():
        assert net.eval()(torch.zeros(2, 1, 64, 64)).shape == (2, 4)


def test_training_is_repeatable_per_seed_and_leaves_global_rng_alone():
    import torch

    rng = np.random.default_rng(0)
    images = rng.random((16, 64, 64), dtype=np.float32)
    labels = (rng.random((16, 2)) < 0.5).astype(np.int8)
    state = torch.random.get_rng_state()
    schedule = Schedule(steps=3, batch_size=8, learning_rate=1e-3)
    def run(seed):
        return predict(fit_classifier(images, labels, model="small_cnn", schedule=schedule, seed=seed, device="cpu",
                                      real_rows=np.arange(len(images))),
                       images[:, None], device="cpu")
    first = run(0)
    assert np.array_equal(first, run(0))
    assert not np.array_equal(first, run(1))
    assert torch.equal(state, torch.random.get_rng_state())
