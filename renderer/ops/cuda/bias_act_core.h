// bias_act element functions, shared by the CUDA kernel and the CPU emulation.
// Each activation and derivative matches the PyTorch function used by the
// reference path (including its value at 0 and softplus' threshold of 20).
#pragma once

#include "bias_act.h"

#define AFV_SELU_ALPHA 1.6732632423543772848170429916717f
#define AFV_SELU_SCALE 1.0507009873554804934193349852946f

AFV_HD float afv_act(int act, float v, float alpha) {
    switch (act) {
        case AFV_ACT_RELU: return v < 0 ? 0.0f : v;
        case AFV_ACT_LRELU: return v > 0 ? v : v * alpha;
        case AFV_ACT_TANH: return tanhf(v);
        case AFV_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
        case AFV_ACT_ELU: return v > 0 ? v : expm1f(v);
        case AFV_ACT_SELU: return AFV_SELU_SCALE * (v > 0 ? v : AFV_SELU_ALPHA * expm1f(v));
        case AFV_ACT_SOFTPLUS: return v > 20.0f ? v : log1pf(expf(v));
        case AFV_ACT_SWISH: return v / (1.0f + expf(-v));
        default: return v;
    }
}

// d act / d v.
AFV_HD float afv_act_grad(int act, float v, float alpha) {
    switch (act) {
        case AFV_ACT_RELU: return v > 0 ? 1.0f : 0.0f;
        case AFV_ACT_LRELU: return v > 0 ? 1.0f : alpha;
        case AFV_ACT_TANH: { float t = tanhf(v); return 1.0f - t * t; }
        case AFV_ACT_SIGMOID: { float s = 1.0f / (1.0f + expf(-v)); return s * (1.0f - s); }
        case AFV_ACT_ELU: return v > 0 ? 1.0f : expf(v);
        case AFV_ACT_SELU: return v > 0 ? AFV_SELU_SCALE : AFV_SELU_SCALE * AFV_SELU_ALPHA * expf(v);
        case AFV_ACT_SOFTPLUS: { if (v > 20.0f) return 1.0f; float z = expf(v); return z / (z + 1.0f); }
        case AFV_ACT_SWISH: { float s = 1.0f / (1.0f + expf(-v)); return s + v * s * (1.0f - s); }
        default: return 1.0f;
    }
}

template <typename T>
AFV_HD float afv_bias_act_input(const AfvBiasActParams& p, long long i) {
    float v = afv_load((const T*)p.x + i);
    if (p.b)
        v += afv_load((const T*)p.b + (int)((i / p.inner) % p.channels));
    return v;
}

template <typename T>
AFV_HD void afv_bias_act_forward_elem(const AfvBiasActParams& p, long long i) {
    float y = afv_act(p.act, afv_bias_act_input<T>(p, i), p.alpha) * p.gain;
    y = y > p.clamp ? p.clamp : (y < -p.clamp ? -p.clamp : y);  // NaN passes, as in torch.clamp
    afv_store((T*)p.out + i, y);
}

// The gradient is zero where the clamp is active (|act * gain| > clamp).
template <typename T>
AFV_HD void afv_bias_act_backward_elem(const AfvBiasActParams& p, long long i) {
    float v = afv_bias_act_input<T>(p, i);
    float gy = afv_load((const T*)p.gy + i);
    float g = 0;
    if (!(fabsf(afv_act(p.act, v, p.alpha) * p.gain) > p.clamp))
        g = gy * afv_act_grad(p.act, v, p.alpha) * p.gain;
    afv_store((T*)p.out + i, g);
}
