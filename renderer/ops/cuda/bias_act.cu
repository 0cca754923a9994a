// bias_act CUDA kernels: element-wise, grid-stride (see bias_act_core.h).
#include <cuda_runtime.h>

#include "bias_act_core.h"

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads) bias_act_forward_kernel(AfvBiasActParams p) {
    for (long long i = blockIdx.x * (long long)kThreads + threadIdx.x; i < p.numel; i += (long long)gridDim.x * kThreads)
        afv_bias_act_forward_elem<T>(p, i);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) bias_act_backward_kernel(AfvBiasActParams p) {
    for (long long i = blockIdx.x * (long long)kThreads + threadIdx.x; i < p.numel; i += (long long)gridDim.x * kThreads)
        afv_bias_act_backward_elem<T>(p, i);
}

int num_blocks(long long numel) {
    long long blocks = (numel + kThreads - 1) / kThreads;
    return (int)(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

}  // namespace

const char* afv_bias_act_forward(const AfvBiasActParams& p, void* stream) {
    cudaStream_t s = (cudaStream_t)stream;
    if (p.dtype == AFV_FLOAT16)
        bias_act_forward_kernel<__half><<<num_blocks(p.numel), kThreads, 0, s>>>(p);
    else
        bias_act_forward_kernel<float><<<num_blocks(p.numel), kThreads, 0, s>>>(p);
    cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

const char* afv_bias_act_backward(const AfvBiasActParams& p, void* stream) {
    cudaStream_t s = (cudaStream_t)stream;
    if (p.dtype == AFV_FLOAT16)
        bias_act_backward_kernel<__half><<<num_blocks(p.numel), kThreads, 0, s>>>(p);
    else
        bias_act_backward_kernel<float><<<num_blocks(p.numel), kThreads, 0, s>>>(p);
    cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}
