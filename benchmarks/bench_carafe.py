"""Operator benchmark: CARAFE up / CARAFE++ down against interpolation and a naive version.

Prints a markdown table and writes JSON under benchmarks/results/. Every figure comes from
this run; compare rows as ratios (the 'x bilinear' columns), not across machines.

    python benchmarks/bench_carafe.py                  # CPU, 2 threads (the issue's shapes)
    python benchmarks/bench_carafe.py --device cuda    # GPU shapes, fp32/fp16/bf16

On the 2-core CI machine `--repeats 5` takes about 7 minutes (the naive and reference rows take
most of it); `--repeats 9 --skip reference,naive_unfold,nearest` about 1 min 30 s.

Times are medians over repeats that run every implementation once, round-robin in a shuffled
order, so a slow phase of a shared machine slows all of them alike. Peak memory is the rise
above what is in use after warm-up: CUDA's peak allocation, or on CPU the process's peak
resident set (VmHWM, reset through /proc/self/clear_refs); on CPU each peak is taken in a fresh
subprocess so that allocator caches of other cases do not mix in.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import describe, device_tag, peak_memory, reset_peak_memory, synchronize  # noqa: E402
from carafe_op import backend_name, carafe, carafe_down, empty_cache, reassemble_reference  # noqa: E402

KERNEL, GROUPS, SCALE = 5, 1, 2
SHAPES = {
    "cpu": {"up": (2, 256, 64, 64), "down": (2, 256, 128, 128)},
    "cuda": {"up": (8, 256, 128, 128), "down": (8, 256, 256, 256)},
}
IMPLEMENTATIONS = ["carafe", "carafe_fresh", "carafe_fresh_4k", "reference", "naive_unfold", "bilinear", "nearest"]
# The CPU backend with its buffer reuse off (carafe_op.buffer_pool), and also without huge pages.
CPU_ONLY = {"carafe_fresh", "carafe_fresh_4k"}
FRESH = {"CARAFE_OP_BUFFER_CACHE_MB": "0", "CARAFE_OP_HUGE_PAGES": "1"}
FRESH_4K = {"CARAFE_OP_BUFFER_CACHE_MB": "0", "CARAFE_OP_HUGE_PAGES": "0"}
DEFAULT = {"CARAFE_OP_BUFFER_CACHE_MB": "1024", "CARAFE_OP_HUGE_PAGES": "1"}


def naive_unfold(features: torch.Tensor, masks: torch.Tensor, upsample: bool) -> torch.Tensor:
    """The public pure-PyTorch style: nearest upsample, dilated unfold (k*k copies), einsum."""
    n, c = features.shape[:2]
    r = (KERNEL - 1) // 2
    if upsample:
        source = F.interpolate(features, scale_factor=SCALE, mode="nearest")
        columns = F.unfold(source, KERNEL, dilation=SCALE, padding=r * SCALE)
    else:
        columns = F.unfold(features, KERNEL, padding=r, stride=SCALE)
    out_h, out_w = masks.shape[-2:]
    columns = columns.view(n, GROUPS, c // GROUPS, KERNEL * KERNEL, out_h, out_w)
    kernels = masks.view(n, GROUPS, KERNEL * KERNEL, out_h, out_w)
    return torch.einsum("ngckhw,ngkhw->ngchw", columns, kernels).reshape(n, c, out_h, out_w)


def with_settings(settings: dict[str, str], call: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    """``call`` under the CPU backend's environment settings (buffer reuse, huge pages)."""
    def run():
        os.environ.update(settings)
        return call()
    return run


def make_call(name: str, direction: str, features: torch.Tensor, masks: torch.Tensor) -> Callable[[], torch.Tensor]:
    upsample = direction == "up"
    interpolate_size = masks.shape[-2:]
    op = carafe if upsample else carafe_down
    return {
        "carafe": with_settings(DEFAULT, lambda: op(features, masks, KERNEL, GROUPS, SCALE)),
        "carafe_fresh": with_settings(FRESH, lambda: op(features, masks, KERNEL, GROUPS, SCALE)),
        "carafe_fresh_4k": with_settings(FRESH_4K, lambda: op(features, masks, KERNEL, GROUPS, SCALE)),
        "reference": lambda: reassemble_reference(features, masks, KERNEL, GROUPS, SCALE, upsample),
        "naive_unfold": lambda: naive_unfold(features, masks, upsample),
        "bilinear": lambda: F.interpolate(features, size=interpolate_size, mode="bilinear", align_corners=False),
        "nearest": lambda: F.interpolate(features, size=interpolate_size, mode="nearest"),
    }[name]


def inputs(direction: str, device: str, dtype: torch.dtype, grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    n, c, h, w = SHAPES["cuda" if device.startswith("cuda") else "cpu"][direction]
    out_h, out_w = (h * SCALE, w * SCALE) if direction == "up" else (-(-h // SCALE), -(-w // SCALE))
    features = torch.randn(n, c, h, w, device=device, dtype=dtype, requires_grad=grad)
    logits = torch.randn(n, GROUPS, KERNEL * KERNEL, out_h, out_w, device=device, dtype=dtype)
    masks = logits.softmax(2).view(n, -1, out_h, out_w).requires_grad_(grad)
    return features, masks


def make_step(name: str, direction: str, mode: str, device: str, dtype: torch.dtype) -> Callable[[], None]:
    """One call of an implementation (plus its backward in 'fwd+bwd' mode), warmed up."""
    backward = mode == "fwd+bwd"
    features, masks = inputs(direction, device, dtype, backward)
    call = make_call(name, direction, features, masks)
    grad = torch.ones_like(call()) if backward else None

    def step():
        out = call()
        if backward:
            out.backward(grad)
            features.grad = masks.grad = None

    for _ in range(2):
        step()
    synchronize(device)
    return step


def measure_times(names: list[str], direction: str, mode: str, device: str, dtype: torch.dtype,
                  repeats: int) -> dict[str, float]:
    """Median time (ms) of each implementation, timed round-robin: each repeat runs every
    implementation once, so a slow phase of a shared machine hits all of them alike and the
    ratios stay comparable. The order is shuffled per repeat (fixed seed): in a fixed order
    each implementation always inherits the memory its predecessor just freed."""
    steps = {name: make_step(name, direction, mode, device, dtype) for name in names}
    times = {name: [] for name in names}
    order = random.Random(0)
    for _ in range(repeats):
        for name in order.sample(names, len(names)):
            step = steps[name]
            synchronize(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def measure_peak(name: str, direction: str, mode: str, device: str, dtype: torch.dtype) -> float:
    """Peak extra memory (MiB) of one call after warm-up. The CPU backend's idle buffers are
    freed first, so that its outputs count as they would in a first call."""
    step = make_step(name, direction, mode, device, dtype)
    empty_cache()
    base = reset_peak_memory(device)
    step()
    synchronize(device)
    return max(peak_memory(device) - base, 0) / 2**20


def tensor_bytes(direction: str, device: str, dtype: torch.dtype) -> int:
    """Bytes a perfect forward moves: read features and kernels once, write the output once."""
    n, c, h, w = SHAPES["cuda" if device.startswith("cuda") else "cpu"][direction]
    out_h, out_w = (h * SCALE, w * SCALE) if direction == "up" else (-(-h // SCALE), -(-w // SCALE))
    size = torch.finfo(dtype).bits // 8
    return size * (n * c * h * w + n * GROUPS * KERNEL**2 * out_h * out_w + n * c * out_h * out_w)


def copy_bandwidth_gbs(device: str) -> float:
    """Measured device-to-device copy bandwidth (read + write), the roofline for this run."""
    buffer = torch.empty(2**28, dtype=torch.float32, device=device)
    target = torch.empty_like(buffer)
    for _ in range(3):
        target.copy_(buffer)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(10):
        target.copy_(buffer)
    synchronize(device)
    return 2 * buffer.numel() * 4 * 10 / (time.perf_counter() - start) / 1e9


def run_worker(args: argparse.Namespace, *worker_args: str, env: dict[str, str] | None = None) -> dict:
    """Run this script as a worker in a fresh process; return the JSON it prints last."""
    command = [sys.executable, __file__, "--worker", *worker_args,
               "--threads", str(args.threads), "--repeats", str(args.repeats), "--device", args.device]
    output = subprocess.run(command, check=True, capture_output=True, text=True,
                            env=None if env is None else os.environ | env).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure_all(
    args: argparse.Namespace, implementations: list[str], direction: str, mode: str, dtype_name: str
) -> dict:
    """{implementation: {"ms", "peak_mib"}}. On CPU the timings run in one fresh process and
    each peak in its own (the resident-set peak cannot be reset per case)."""
    dtype = getattr(torch, dtype_name)
    if args.device.startswith("cuda"):
        times = measure_times(implementations, direction, mode, args.device, dtype, args.repeats)
        peaks = {name: measure_peak(name, direction, mode, args.device, dtype) for name in implementations}
    else:
        times = run_worker(args, "times", direction, mode, dtype_name, ",".join(implementations))
        # A fixed mmap threshold: glibc otherwise raises it after the first free and serves later
        # large buffers from the already resident heap, which hides them from the peak.
        fixed_threshold = {"MALLOC_MMAP_THRESHOLD_": str(2**20)}
        peaks = {name: run_worker(args, "peak", direction, mode, dtype_name, name, env=fixed_threshold)
                 for name in implementations}
    return {name: {"ms": times[name], "peak_mib": peaks[name]} for name in implementations}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch and numba)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--dtypes", default=None, help="comma list; default float32 on CPU, all three on CUDA")
    parser.add_argument("--skip", default="", help="comma list of implementations to leave out")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/carafe_<device>.json)")
    parser.add_argument("--worker", nargs=5, metavar=("WHAT", "DIRECTION", "MODE", "DTYPE", "IMPLS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        what, direction, mode, dtype_name, names = args.worker
        dtype = getattr(torch, dtype_name)
        if what == "times":
            result = measure_times(names.split(","), direction, mode, args.device, dtype, args.repeats)
        else:
            result = measure_peak(names, direction, mode, args.device, dtype)
        print(json.dumps(result))
        return

    cuda = args.device.startswith("cuda")
    dtype_names = (args.dtypes or ("float32,float16,bfloat16" if cuda else "float32")).split(",")
    implementations = [name for name in IMPLEMENTATIONS
                       if name not in args.skip.split(",") and not (cuda and name in CPU_ONLY)]
    roofline = copy_bandwidth_gbs(args.device) if cuda else None
    rows = []
    for dtype_name in dtype_names:
        for direction in ("up", "down"):
            for mode in ("fwd", "fwd+bwd"):
                for name, result in measure_all(args, implementations, direction, mode, dtype_name).items():
                    row = {"impl": name, "direction": direction, "mode": mode, "dtype": dtype_name, **result}
                    if cuda and mode == "fwd":
                        moved = tensor_bytes(direction, args.device, getattr(torch, dtype_name))
                        row["gbs"] = moved / result["ms"] / 1e6
                        row["roofline_fraction"] = row["gbs"] / roofline
                    rows.append(row)
                    print(f"  {dtype_name} {direction} {name:13s} {mode:8s} {result['ms']:9.2f} ms "
                          f"{result['peak_mib']:8.1f} MiB", flush=True)
    for row in rows:
        base = next(r for r in rows if r["impl"] == "bilinear" and r["direction"] == row["direction"]
                    and r["mode"] == row["mode"] and r["dtype"] == row["dtype"])
        row["x_bilinear"] = row["ms"] / base["ms"]
    report = {
        "machine": describe(args.device),
        "backend": backend_name(args.device),
        "shapes": SHAPES["cuda" if cuda else "cpu"],
        "kernel_size": KERNEL, "groups": GROUPS, "scale": SCALE,
        "copy_bandwidth_gbs": roofline,
        "rows": rows,
    }
    out = Path(args.out or Path(__file__).parent / "results" / f"carafe_{device_tag(args.device)}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(markdown_table(report))
    print(f"\nwrote {out}")


def markdown_table(report: dict) -> str:
    shapes = report["shapes"]
    lines = [
        f"Device: {report['machine'].get('gpu', report['machine']['cpu'])}, backend `{report['backend']}`, "
        f"k={report['kernel_size']}, up x2 at {shapes['up']}, down x2 at {shapes['down']}",
        "",
        "| dtype | op | implementation | fwd ms | fwd x bilinear | fwd+bwd ms | fwd+bwd x bilinear "
        "| fwd peak MiB | fwd+bwd peak MiB |" + (" fwd GB/s | % of copy BW |" if report["copy_bandwidth_gbs"] else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if report["copy_bandwidth_gbs"] else ""),
    ]
    rows = report["rows"]
    for fwd in (r for r in rows if r["mode"] == "fwd"):
        both = next(r for r in rows if r["mode"] == "fwd+bwd" and r["impl"] == fwd["impl"]
                    and r["direction"] == fwd["direction"] and r["dtype"] == fwd["dtype"])
        line = (f"| {fwd['dtype']} | {fwd['direction']} | {fwd['impl']} | {fwd['ms']:.2f} | {fwd['x_bilinear']:.2f} "
                f"| {both['ms']:.2f} | {both['x_bilinear']:.2f} | {fwd['peak_mib']:.0f} | {both['peak_mib']:.0f} |")
        if report["copy_bandwidth_gbs"]:
            line += f" {fwd['gbs']:.0f} | {100 * fwd['roofline_fraction']:.0f} |"
        lines.append(line)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
