"""A short description of the machine a benchmark ran on, stored with every result."""

from __future__ import annotations

import platform

import torch


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe(device: str) -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.startswith("cuda"):
        properties = torch.cuda.get_device_properties(device)
        info |= {"gpu": properties.name, "gpu_memory_gib": round(properties.total_memory / 2**30, 1),
                 "cuda": torch.version.cuda}
    return info


def device_tag(device: str) -> str:
    """A file-name-safe label: 'cpu-2threads' or the GPU's name."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(device).replace(" ", "-").lower()
    return f"cpu-{torch.get_num_threads()}threads"


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak_memory(device: str) -> int:
    """Reset the peak-memory counter; return the memory in use now (bytes).

    CUDA: the caching allocator's peak allocation. CPU: the process's peak resident set
    (VmHWM, reset through /proc/self/clear_refs), so run each case in a fresh process."""
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM
    return _proc_status_bytes("VmRSS")


def peak_memory(device: str) -> int:
    """Peak bytes since ``reset_peak_memory`` (subtract what it returned for the rise)."""
    return torch.cuda.max_memory_allocated() if device.startswith("cuda") else _proc_status_bytes("VmHWM")


def _proc_status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")
