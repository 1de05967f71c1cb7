"""Run logging on rank 0: TensorBoard scalars and images, and a console progress bar.

On other ranks every call is a no-op, so training code logs unconditionally.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from tqdm import tqdm


class RunLogger:
    """TensorBoard writer for ``log_dir`` (enabled on the main process only).

    ``purge_step``: when resuming, events at or after this step left by the interrupted run
    are dropped by TensorBoard, so curves do not double back.
    """

    def __init__(self, log_dir: str | os.PathLike, enabled: bool = True, purge_step: int | None = None) -> None:
        self.log_dir = Path(log_dir)
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(os.fspath(self.log_dir), purge_step=purge_step)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        if self.writer is not None:
            for tag, value in values.items():
                self.writer.add_scalar(tag, float(value), step)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """An (H, W, 3) uint8 image."""
        if self.writer is not None:
            self.writer.add_image(tag, image, step, dataformats="HWC")

    def text(self, tag: str, text: str, step: int) -> None:
        if self.writer is not None:
            self.writer.add_text(tag, text, step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Progress:
    """A tqdm bar over iterations showing loss, lr, it/s and ETA (main process only)."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True, desc: str = "train") -> None:
        self.bar = tqdm(
            total=total, initial=initial, desc=desc, unit="it", disable=not enabled, dynamic_ncols=True,
            mininterval=0.5 if sys.stderr.isatty() else 5.0, file=sys.stderr,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                       "[{elapsed}<{remaining}, {rate_fmt}{postfix}]",
        )
        self._smoothed: dict[str, float] = {}

    def update(self, values: Mapping[str, float], lr: float) -> None:
        """Advance one iteration; ``values`` are shown as exponential moving averages."""
        for key, value in values.items():
            old = self._smoothed.get(key)
            self._smoothed[key] = value if old is None or not math.isfinite(old) else 0.9 * old + 0.1 * value
        post = {k: f"{v:.4f}" for k, v in self._smoothed.items()}
        post["lr"] = f"{lr:.2e}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    def write(self, message: str) -> None:
        """Print a line without breaking the bar."""
        if not self.bar.disable:
            self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
