// The CUDA kernels of every activation and gating functor for float32 tensors (engine.cuh).
#include "engine.cuh"

template void ffn_ext::cuda::run_typed<float>(const ffn_ext::KernelDesc&, const ffn_ext::cuda::Launch&,
                                                     const ffn_ext::cuda::CudaDevice&);
