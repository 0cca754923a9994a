// filtered_lrelu CUDA kernels: the fused forward pass (see filtered_lrelu_core.h), as a
// generic kernel and as compile-time specialisations for the networks' configurations,
// and the element-wise activation gradient used by the backward pass.
#include <cuda_runtime.h>

#include "filtered_lrelu_core.h"

namespace {

constexpr int kThreads = 256;
constexpr int kSmemLimit = 48 * 1024;  // No opt-in to larger shared memory needed.

template <typename T>
__global__ void __launch_bounds__(kThreads) filtered_lrelu_kernel(AfvFlreluParams p, AfvFlreluPlan q) {
    extern __shared__ float smem[];
    afv_flrelu_grid<T>(p, q, gridDim.x, gridDim.y, gridDim.z, blockIdx.x, blockIdx.y, blockIdx.z, smem, AfvGpuExec());
}

template <typename T, int U, int D, int KU, int KD, bool FD2D>
__global__ void __launch_bounds__(kThreads) filtered_lrelu_fast_kernel(AfvFlreluParams p, AfvFlreluPlan q) {
    extern __shared__ float smem[];
    afv_flrelu_grid_fast<T, U, D, KU, KD, FD2D>(p, q, gridDim.x, gridDim.y, gridDim.z, blockIdx.x, blockIdx.y,
                                                blockIdx.z, smem, AfvGpuExec());
}

__global__ void __launch_bounds__(kThreads) mask_grad_kernel(AfvFlreluGradParams p) {
    long long n = p.rows * p.mid_w;
    for (long long i = blockIdx.x * (long long)kThreads + threadIdx.x; i < n; i += (long long)gridDim.x * kThreads)
        afv_flrelu_mask_grad_elem(p, i);
}

template <typename T>
void launch(const AfvFlreluParams& p, const AfvFlreluPlan& q, dim3 grid, size_t smem, cudaStream_t s) {
    switch (afv_flrelu_fast_config(p)) {
#define AFV_FLRELU_LAUNCH(id, u, d, ku, kd, fd2d)                                           \
        case id:                                                                            \
            filtered_lrelu_fast_kernel<T, u, d, ku, kd, fd2d><<<grid, kThreads, smem, s>>>(p, q); \
            return;
        AFV_FLRELU_FAST_CONFIGS(AFV_FLRELU_LAUNCH)
#undef AFV_FLRELU_LAUNCH
        default:
            filtered_lrelu_kernel<T><<<grid, kThreads, smem, s>>>(p, q);
    }
}

}  // namespace

const char* afv_filtered_lrelu_forward(const AfvFlreluParams& p, void* stream) {
    AfvFlreluPlan q;
    if (!afv_flrelu_plan(p, kSmemLimit, kThreads, &q))
        return "filtered_lrelu: the filters are too large for the kernel's shared-memory tile";
    dim3 grid(q.tiles_x, afv_min(q.tiles_y, 65535), afv_min(p.batch * p.channels, 65535));
    size_t smem = (size_t)q.smem_floats * sizeof(float);
    cudaStream_t s = (cudaStream_t)stream;
    if (p.dtype == AFV_FLOAT16)
        launch<__half>(p, q, grid, smem, s);
    else
        launch<float>(p, q, grid, smem, s);
    cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

const char* afv_filtered_lrelu_mask_grad(const AfvFlreluGradParams& p, void* stream) {
    long long blocks = (p.rows * p.mid_w + kThreads - 1) / kThreads;
    int grid = (int)(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
    mask_grad_kernel<<<grid, kThreads, 0, (cudaStream_t)stream>>>(p);
    cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}
