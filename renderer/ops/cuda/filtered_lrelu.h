// filtered_lrelu kernel interface (plain C++, no torch or CUDA headers).
//
// Semantics (docs/generator.md section 3), per image plane:
//   x + b -> upfirdn(fu, up, padding, gain up^2) -> * gain -> leaky ReLU(slope)
//         -> clamp to [-clamp, clamp] -> upfirdn(fd, down)
// The fu-filtered signal at the upsampled rate ("mid", mid_h x mid_w samples)
// only ever exists tile by tile in shared memory. Optionally the kernel
// writes a 2-bit code per mid sample for the backward pass: bit 0 = the
// leaky ReLU took its negative branch, bit 1 = the clamp was active.
#pragma once

#include "afv_common.h"

struct AfvFlreluParams {
    const void* x;            // [batch, channels, in_h, in_w], element type `dtype`, any strides
    const void* b;            // [channels], element type `dtype`; null = no bias
    const float* fu;          // up filter taps, contiguous float32; null = a single tap of value 1
    const float* fd;          // down filter taps, likewise
    void* y;                  // [batch, channels, out_h, out_w], element type `dtype`
    unsigned char* mask;      // null, or [batch, channels, mid_h, mask_row_bytes] 2-bit codes, 4 per byte along x
    int dtype;                // AfvDtype
    int batch, channels, in_h, in_w;
    long long x_stride[4];    // strides of x in elements: n, c, h, w
    long long y_stride[4];
    int out_h, out_w;
    int mid_h, mid_w;
    int mask_row_bytes;       // ceil(mid_w / 4)
    int up, down;             // same factor along x and y
    int pad_x0, pad_y0;       // padding before the up filter, at the upsampled rate
    int fu_w, fu_h, fu_2d;    // taps along x and y; fu_2d: 2-D [fu_h, fu_w], else separable 1-D [fu_w]
    int fd_w, fd_h, fd_2d;
    int flip;                 // 1: correlate with the filters as given; 0: true convolution
    float gain, slope, clamp; // clamp = +inf for none
    float act_gain;           // up * up * gain: scale of the fu-filtered sum before the activation
};

// Fill the derived sizes of `p`; returns false when the output would be empty.
inline bool afv_flrelu_setup(AfvFlreluParams* p, int pad_x1, int pad_y1) {
    p->mid_w = p->in_w * p->up + p->pad_x0 + pad_x1 - p->fu_w + 1;
    p->mid_h = p->in_h * p->up + p->pad_y0 + pad_y1 - p->fu_h + 1;
    p->out_w = afv_floor_div(p->mid_w - p->fd_w + p->down, p->down);
    p->out_h = afv_floor_div(p->mid_h - p->fd_h + p->down, p->down);
    p->mask_row_bytes = (afv_max(p->mid_w, 0) + 3) / 4;
    p->act_gain = (float)(p->up * p->up) * p->gain;
    return p->out_w >= 1 && p->out_h >= 1;
}

// The gradient of the activation for one 2-bit code (see above).
AFV_HD float afv_flrelu_code_grad(unsigned code, float gain, float slope) {
    return (code & 2) ? 0.0f : ((code & 1) ? gain * slope : gain);
}

// Backward helper: out = g * activation gradient, element-wise over [batch, channels, mid_h, mid_w] (contiguous float32).
struct AfvFlreluGradParams {
    const float* g;
    float* out;
    const unsigned char* mask;
    long long rows;           // batch * channels * mid_h
    int mid_w, mask_row_bytes;
    float gain, slope;
};

// Launch on `stream` (a cudaStream_t). Return null on success, else an error message.
const char* afv_filtered_lrelu_forward(const AfvFlreluParams& p, void* stream);
const char* afv_filtered_lrelu_mask_grad(const AfvFlreluGradParams& p, void* stream);
