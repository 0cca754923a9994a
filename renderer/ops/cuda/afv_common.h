// Helpers shared by the kernels of renderer/ops/cuda.
//
// Every *_core.h header compiles both with nvcc (device code) and with a
// plain C++ compiler (the CPU emulation used by the tests): block-level
// algorithms are written as a sequence of stages separated by barriers, and
// an execution policy runs each stage either on the threads of a CUDA block
// (AfvGpuExec: one call per thread, then __syncthreads) or sequentially for
// every emulated thread index (AfvCpuExec). No torch headers here.
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define AFV_HD __host__ __device__ __forceinline__
#define AFV_DEV __device__ __forceinline__
#define AFV_UNROLL _Pragma("unroll")
#define AFV_NO_UNROLL _Pragma("unroll 1")
#else
#include <math.h>
#define AFV_HD inline
#define AFV_DEV inline
#define AFV_UNROLL
#define AFV_NO_UNROLL
#endif

// Element types of x / y (float32 accumulation everywhere).
enum AfvDtype { AFV_FLOAT32 = 0, AFV_FLOAT16 = 1 };

// Integer division rounding towards -infinity, and the matching modulo (b > 0).
AFV_HD int afv_floor_div(int a, int b) {
    int q = a / b;
    return (q * b != a && a < 0) ? q - 1 : q;
}
AFV_HD int afv_ceil_div(int a, int b) { return -afv_floor_div(-a, b); }
AFV_HD int afv_mod(int a, int b) {
    int r = a % b;
    return r < 0 ? r + b : r;
}
AFV_HD int afv_min(int a, int b) { return a < b ? a : b; }
AFV_HD int afv_max(int a, int b) { return a > b ? a : b; }

// Loads and stores with float conversion.
AFV_HD float afv_load(const float* p) { return *p; }
AFV_HD void afv_store(float* p, float v) { *p = v; }
#if defined(__CUDACC__)
AFV_HD float afv_load(const __half* p) { return __half2float(*p); }
AFV_HD void afv_store(__half* p, float v) { *p = __float2half_rn(v); }
#endif

// Execution policies: run one barrier-delimited stage of a block algorithm.
struct AfvCpuExec {
    int num_threads;
    template <class F>
    void stage(F f) const {
        for (int t = 0; t < num_threads; ++t)
            f(t, num_threads);
    }
};

#if defined(__CUDACC__)
struct AfvGpuExec {
    template <class F>
    __device__ __forceinline__ void stage(F f) const {
        f((int)threadIdx.x, (int)blockDim.x);
        __syncthreads();
    }
};
#endif
