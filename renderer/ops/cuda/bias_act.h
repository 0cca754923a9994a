// bias_act kernel interface: y = clamp(act(x + b) * gain, -clamp, clamp), and its gradient.
// Plain C++ (no torch or CUDA headers).
#pragma once

#include "afv_common.h"

// Activation ids; renderer/ops/bias_act.py maps names to these numbers.
enum AfvAct {
    AFV_ACT_LINEAR = 0, AFV_ACT_RELU = 1, AFV_ACT_LRELU = 2, AFV_ACT_TANH = 3, AFV_ACT_SIGMOID = 4,
    AFV_ACT_ELU = 5, AFV_ACT_SELU = 6, AFV_ACT_SOFTPLUS = 7, AFV_ACT_SWISH = 8,
};

struct AfvBiasActParams {
    const void* x;            // contiguous, element type `dtype`
    const void* b;            // [channels], element type `dtype`; null = no bias
    const void* gy;           // backward only: gradient of y, contiguous, element type `dtype`
    void* out;                // forward: y; backward: gradient of x (contiguous, element type `dtype`)
    int dtype;                // AfvDtype
    long long numel;
    long long inner;          // product of the sizes after the bias dimension
    int channels;             // size of the bias dimension
    int act;                  // AfvAct
    float alpha, gain, clamp; // clamp = +inf for none
};

// Launch on `stream` (a cudaStream_t). Return null on success, else an error message.
const char* afv_bias_act_forward(const AfvBiasActParams& p, void* stream);
const char* afv_bias_act_backward(const AfvBiasActParams& p, void* stream);
