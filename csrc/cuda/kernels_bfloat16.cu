// The CUDA kernels of every activation and gating functor for bfloat16 tensors (engine.cuh).
#include "engine.cuh"

template void ffn_ext::cuda::run_typed<c10::BFloat16>(const ffn_ext::KernelDesc&, const ffn_ext::cuda::Launch&,
                                                     const ffn_ext::cuda::CudaDevice&);
