"""Reuse of the CPU backend's output buffers: only once free, within the cap, and invisible in results."""

import gc
import threading

import pytest
import torch
from carafe_cases import random_case

from carafe_op import carafe, carafe_down, empty_cache
from carafe_op.buffer_pool import MIN_POOLED_BYTES, cached_bytes, empty

# 1 MiB of float32, the smallest pooled size.
SHAPE = (1, 4, 256, 256)


@pytest.fixture(autouse=True)
def fresh_pool(monkeypatch):
    monkeypatch.setenv("CARAFE_OP_BUFFER_CACHE_MB", "64")
    monkeypatch.setenv("CARAFE_OP_HUGE_PAGES", "1")
    empty_cache()
    yield
    empty_cache()


def test_freed_buffer_is_reused():
    first = empty(SHAPE, torch.float32)
    address = first.data_ptr()
    del first
    gc.collect()
    assert cached_bytes() == MIN_POOLED_BYTES
    again = empty(SHAPE, torch.float32)
    assert again.data_ptr() == address
    assert cached_bytes() == 0


@pytest.mark.parametrize("keep", ["view", "numpy", "storage"])
def test_buffer_still_viewed_is_not_reused(keep):
    first = empty(SHAPE, torch.float32)
    address = first.data_ptr()
    views = {"view": lambda t: t[0, 1:2], "numpy": lambda t: t.numpy(), "storage": lambda t: t.untyped_storage()}
    kept = views[keep](first)
    del first
    gc.collect()
    assert cached_bytes() == 0
    assert empty(SHAPE, torch.float32).data_ptr() != address  # freed at once: one idle buffer
    del kept
    gc.collect()
    assert cached_bytes() == 2 * MIN_POOLED_BYTES


def test_idle_memory_is_capped(monkeypatch):
    monkeypatch.setenv("CARAFE_OP_BUFFER_CACHE_MB", "1")
    buffers = [empty(SHAPE, torch.float32) for _ in range(3)]
    del buffers
    gc.collect()
    assert cached_bytes() == MIN_POOLED_BYTES


def test_longest_idle_buffer_goes_first(monkeypatch):
    monkeypatch.setenv("CARAFE_OP_BUFFER_CACHE_MB", "2")
    old = empty((1, 8, 256, 256), torch.float32)
    del old
    gc.collect()
    new = empty(SHAPE, torch.float32)
    address = new.data_ptr()
    del new
    gc.collect()
    assert cached_bytes() == MIN_POOLED_BYTES
    assert empty(SHAPE, torch.float32).data_ptr() == address


def test_zero_turns_reuse_off(monkeypatch):
    monkeypatch.setenv("CARAFE_OP_BUFFER_CACHE_MB", "0")
    first = empty(SHAPE, torch.float32)
    del first
    gc.collect()
    assert cached_bytes() == 0


def test_small_buffers_are_not_pooled():
    small = empty((1, 1, 16, 16), torch.float32)
    del small
    gc.collect()
    assert cached_bytes() == 0


def test_empty_cache_frees_idle_buffers():
    del_me = empty(SHAPE, torch.float64)
    del del_me
    gc.collect()
    assert cached_bytes() == 2 * MIN_POOLED_BYTES
    empty_cache()
    assert cached_bytes() == 0


def test_huge_page_setting_keeps_its_own_buffers(monkeypatch):
    first = empty(SHAPE, torch.float32)
    address = first.data_ptr()
    del first
    gc.collect()
    monkeypatch.setenv("CARAFE_OP_HUGE_PAGES", "0")
    assert empty(SHAPE, torch.float32).data_ptr() != address


def test_shapes_dtypes_and_channels_last():
    planar = empty(SHAPE, torch.float64)
    assert planar.shape == SHAPE and planar.dtype == torch.float64 and planar.is_contiguous()
    nhwc = empty(SHAPE, torch.float32, torch.channels_last)
    assert nhwc.shape == SHAPE and nhwc.is_contiguous(memory_format=torch.channels_last)


def test_bad_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("CARAFE_OP_BUFFER_CACHE_MB", "1G")
    with pytest.raises(ValueError, match="CARAFE_OP_BUFFER_CACHE_MB must be a whole number of MiB.*'1G'"):
        empty(SHAPE, torch.float32)


def test_threads_never_share_a_live_buffer():
    addresses, errors = [], []

    def work():
        try:
            for _ in range(50):
                held = [empty(SHAPE, torch.float32) for _ in range(2)]
                addresses.append(tuple(t.data_ptr() for t in held))
                for t in held:
                    t.fill_(threading.get_ident() % 1000)
                for t in held:
                    assert bool((t == threading.get_ident() % 1000).all())
        except AssertionError as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert all(a != b for a, b in addresses)


@pytest.mark.parametrize("upsample", [True, False])
def test_op_results_survive_later_calls(monkeypatch, upsample):
    """A call that reuses freed buffers leaves results still held from earlier calls alone and
    computes what a call without reuse computes."""
    op = carafe if upsample else carafe_down
    size = 64 if upsample else 128

    def run(seed):
        torch.manual_seed(seed)
        features, masks = random_case(1, 64, size, size, 3, 1, 2, upsample, dtype=torch.float32)
        features.requires_grad_()
        masks.requires_grad_()
        out = op(features, masks, 3, 1, 2)
        out.backward(torch.ones_like(out))
        return out.detach(), features.grad

    held = run(0)
    copies = [t.clone() for t in held]
    freed = run(1)
    assert all(torch.equal(a, b) for a, b in zip(held, copies, strict=True))
    addresses = [t.data_ptr() for t in freed]
    del freed
    gc.collect()
    again = run(0)
    assert [t.data_ptr() for t in again] == addresses
    assert all(torch.equal(a, b) for a, b in zip(held, copies, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(again, copies, strict=True))
    monkeypatch.setenv("CARAFE_OP_BUFFER_CACHE_MB", "0")
    assert all(torch.equal(a, b) for a, b in zip(run(0), copies, strict=True))
