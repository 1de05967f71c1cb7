"""CUDA kernel sources and the GPU-free parts of the CUDA backend (instantiations, launch plans,
NVRTC compile check). The CuPy glue lives in ``carafe_op.cuda_backend``."""
