"""The device policy (cxrbench.device): on the CPU it changes nothing; on CUDA its decisions, checked without a GPU.

The CPU path is what committed entries are verified on bit for bit, so the recipes' loop under the policy is
compared here with the loop as it was written before the policy existed.
"""

import contextlib
import warnings

import numpy as np
import pytest
import torch

from cxrbench.determinism import deterministic_cell
from cxrbench.device import INFERENCE_BATCH_SIZE, device_kind, device_policy
from cxrbench.errors import ConfigError
from cxrbench.tasks.downstream.classifier import build_classifier
from cxrbench.tasks.downstream.training import Schedule, _batches, fit, predict


def test_on_the_cpu_the_policy_changes_nothing():
    policy = device_policy("cpu")
    assert (policy.kind, policy.autocast_dtype, policy.channels_last, policy.pinned) == ("cpu", None, False, False)
    batch = torch.ones(2, 1, 4, 4)
    assert policy.to_device(batch) is batch
    model = torch.nn.Conv2d(1, 1, 3)
    assert policy.place(model) is model and model.weight.is_contiguous()
    assert isinstance(policy.autocast(), contextlib.nullcontext)
    assert policy.inference_batch_size(128) == 128 and policy.inference_batch_size(64) == 64


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
@pytest.mark.parametrize("bf16, dtype", [(True, "bfloat16"), (False, None)])
def test_on_cuda_bf16_where_supported_channels_last_pinned_and_larger_batches(device, bf16, dtype):
    policy = device_policy(device, bf16_supported=bf16)
    assert (policy.kind, policy.device, policy.autocast_dtype) == ("cuda", device, dtype)
    assert policy.channels_last and policy.pinned
    assert policy.inference_batch_size(128) == INFERENCE_BATCH_SIZE["cuda"] > 128


def test_the_cuda_autocast_is_bf16_and_none_without_bf16():
    with warnings.catch_warnings():  # on a machine without CUDA torch warns that it disables the context
        warnings.simplefilter("ignore")
        context = device_policy("cuda", bf16_supported=True).autocast()
    assert isinstance(context, torch.autocast) and context.fast_dtype == torch.bfloat16
    assert isinstance(device_policy("cuda", bf16_supported=False).autocast(), contextlib.nullcontext)


def test_mps_runs_fp32_without_pinning():
    policy = device_policy("mps")
    assert (policy.kind, policy.autocast_dtype, policy.channels_last, policy.pinned) == ("mps", None, False, False)
    assert device_kind("mps") == "mps"


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "CPU", ""])
def test_an_unknown_device_is_refused_by_name(device):
    with pytest.raises(ConfigError, match=f"device {device!r}: expected cpu, cuda, cuda:N or mps"):
        device_policy(device)


def _fit_before_the_policy(model, inputs, targets, loss_fn, schedule, *, seed):
    """`training.fit` as it was written before the device policy (commit 29de1c2), on the CPU."""
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    y = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
    order_rng = torch.Generator().manual_seed(seed)
    model.to("cpu").train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay)
    for batch in _batches(len(x), schedule, order_rng):
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[batch].to("cpu")), y[batch].to("cpu"))
        loss.backward()
        optimiser.step()


def test_cpu_training_and_prediction_give_the_bits_they_gave_before_the_policy():
    rng = np.random.default_rng(0)
    images, labels = rng.random((12, 1, 32, 32), dtype=np.float32), rng.integers(0, 2, (12, 3)).astype(np.float32)
    schedule = Schedule(steps=4, batch_size=4, learning_rate=1e-2, weight_decay=1e-4)
    trained = []
    for train in (fit, _fit_before_the_policy):
        with deterministic_cell(3):
            model = build_classifier("small_cnn", 3)
            kwargs = {"device": "cpu"} if train is fit else {}
            train(model, images, labels, torch.nn.BCEWithLogitsLoss(), schedule, seed=3, **kwargs)
        trained.append(model)
    ours, before = trained
    for a, b in zip(ours.state_dict().values(), before.state_dict().values(), strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)
    before.eval()
    with torch.inference_mode():
        expected = torch.sigmoid(before(torch.from_numpy(images))).numpy()
    assert predict(ours, images, device="cpu").tobytes() == expected.tobytes()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none in this project's sessions so far)")
def test_on_a_gpu_the_recipe_trains_channels_last_and_predicts_fp32():
    rng = np.random.default_rng(0)
    images, labels = rng.random((16, 1, 32, 32), dtype=np.float32), rng.integers(0, 2, (16, 2)).astype(np.float32)
    model = build_classifier("small_cnn", 2)
    fit(model, images, labels, torch.nn.BCEWithLogitsLoss(), Schedule(3, 8, 1e-2), seed=0, device="cuda")
    assert model[0].weight.is_cuda and model[0].weight.is_contiguous(memory_format=torch.channels_last)
    probabilities = predict(model, images, device="cuda")
    assert probabilities.dtype == np.float32 and np.isfinite(probabilities).all()
