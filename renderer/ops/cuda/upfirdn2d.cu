// upfirdn2d CUDA kernel: one block per output tile and image plane (see upfirdn2d_core.h).
#include <cuda_runtime.h>

#include "upfirdn2d_core.h"

namespace {

constexpr int kThreads = 256;
constexpr int kSmemLimit = 48 * 1024;  // No opt-in to larger shared memory needed.

template <typename T>
__global__ void __launch_bounds__(kThreads) upfirdn2d_kernel(AfvUpfirdnParams p, AfvUpfirdnPlan q) {
    extern __shared__ float smem[];
    afv_upfirdn_grid<T>(p, q, gridDim.x, gridDim.y, gridDim.z, blockIdx.x, blockIdx.y, blockIdx.z, smem, AfvGpuExec());
}

}  // namespace

const char* afv_upfirdn2d(const AfvUpfirdnParams& p, void* stream) {
    AfvUpfirdnPlan q;
    if (!afv_upfirdn_plan(p, kSmemLimit, kThreads, &q))
        return "upfirdn2d: the filter is too large for the kernel's shared-memory tile";
    dim3 grid(q.tiles_x, afv_min(q.tiles_y, 65535), afv_min(p.batch * p.channels, 65535));
    size_t smem = (size_t)q.smem_floats * sizeof(float);
    cudaStream_t s = (cudaStream_t)stream;
    if (p.dtype == AFV_FLOAT16)
        upfirdn2d_kernel<__half><<<grid, kThreads, smem, s>>>(p, q);
    else
        upfirdn2d_kernel<float><<<grid, kThreads, smem, s>>>(p, q);
    cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}
