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
