"""Compile the CUDA kernels with NVRTC (cuda-python bindings) for a given GPU architecture.

This needs no GPU, so CI uses it to prove that every instantiation the backend can launch
compiles for every supported architecture.
"""

from __future__ import annotations

from cuda.bindings import nvrtc

from . import kernels


def _check(result: tuple, program=None) -> tuple:
    """Unwrap a cuda-python ``(status, *values)`` tuple, raising with the compile log on failure."""
    status, *values = result
    if status != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        message = f"NVRTC failed: {status.name}"
        if program is not None:
            _, size = nvrtc.nvrtcGetProgramLogSize(program)
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(program, log)
            message += "\n" + log.decode(errors="replace")
        raise RuntimeError(message)
    return tuple(values)


def compile_cubin(arch: int) -> tuple[bytes, dict[str, str]]:
    """Build ``kernels.source()`` for ``sm_<arch>``; returns the cubin and each name expression's
    lowered (mangled) symbol."""
    (program,) = _check(nvrtc.nvrtcCreateProgram(kernels.source().encode(), b"reassemble.cu", 0, [], []))
    try:
        expressions = kernels.name_expressions()
        for expression in expressions:
            _check(nvrtc.nvrtcAddNameExpression(program, expression.encode()))
        # The flags CuPy adds at runtime (cupy.cuda.compiler): the device's sm arch and -ftz=true.
        options = [o.encode() for o in (f"-arch=sm_{arch}", *kernels.compile_options(), "-ftz=true")]
        _check(nvrtc.nvrtcCompileProgram(program, len(options), options), program)
        (size,) = _check(nvrtc.nvrtcGetCUBINSize(program))
        cubin = b" " * size
        _check(nvrtc.nvrtcGetCUBIN(program, cubin))
        lowered = {e: _check(nvrtc.nvrtcGetLoweredName(program, e.encode()))[0].decode() for e in expressions}
        return cubin, lowered
    finally:
        nvrtc.nvrtcDestroyProgram(program)
