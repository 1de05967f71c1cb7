"""Mixed precision: autocast plus (for fp16) a gradient scaler, behind one small object.

``mode``: ``"auto"`` (bf16 on CUDA devices that support it, else fp16; off on CPU), ``"bf16"``,
``"fp16"`` or ``"fp32"`` (no autocast). On the CPU training always runs in fp32.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

AMP_MODES = ("auto", "bf16", "fp16", "fp32")


class MixedPrecision:
    """``autocast()`` for the forward pass; ``backward_step`` for backward, clipping and the optimiser step."""

    def __init__(self, mode: str, device: torch.device) -> None:
        if mode not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {mode!r}")
        self.device = torch.device(device)
        self.dtype: torch.dtype | None = None
        if self.device.type == "cuda" and mode != "fp32":
            if mode == "auto":
                mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            self.dtype = torch.bfloat16 if mode == "bf16" else torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                      parameters: list[nn.Parameter] | None = None, clip_norm: float | None = None) -> None:
        """Backward (scaled for fp16), optional gradient-norm clipping of ``parameters``, optimiser step."""
        self.scaler.scale(loss).backward()
        if clip_norm:
            self.scaler.unscale_(optimizer)
            params = parameters if parameters is not None else [p for g in optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        self.scaler.step(optimizer)
        self.scaler.update()
