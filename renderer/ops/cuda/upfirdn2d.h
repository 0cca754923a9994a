// upfirdn2d kernel interface: parameters and launcher (plain C++, no torch or CUDA headers).
//
// Semantics (docs/generator.md section 3), per image plane: insert up-1 zeros
// after every sample, pad by (pad_x0, pad_x1, pad_y0, pad_y1) (negative
// crops), correlate with the filter in correlation order (the filter as
// given when flip is set, reversed otherwise), keep every down-th sample,
// multiply by gain. A separable filter is a 1-D filter applied along x, then y.
#pragma once

#include "afv_common.h"

struct AfvUpfirdnParams {
    const void* x;            // [batch, channels, in_h, in_w], element type `dtype`, any strides
    const float* f;           // filter taps, contiguous float32; null = a single tap of value 1
    void* y;                  // [batch, channels, out_h, out_w], element type `dtype`
    int dtype;                // AfvDtype
    int batch, channels, in_h, in_w;
    long long x_stride[4];    // strides of x in elements: n, c, h, w
    long long y_stride[4];
    int out_h, out_w;
    int up_x, up_y, down_x, down_y;
    int pad_x0, pad_y0;
    int f_w, f_h;             // taps along x and y (separable: f_w == f_h)
    int f_2d;                 // 1: 2-D filter [f_h, f_w]; 0: separable 1-D filter [f_w]
    int flip;                 // 1: correlate with f as given; 0: true convolution
    float gain;               // multiplies the result
};

// Fill the derived sizes of `p`; returns false when the output would be empty.
inline bool afv_upfirdn_setup(AfvUpfirdnParams* p, int pad_x1, int pad_y1) {
    p->out_w = afv_floor_div(p->in_w * p->up_x + p->pad_x0 + pad_x1 - p->f_w + p->down_x, p->down_x);
    p->out_h = afv_floor_div(p->in_h * p->up_y + p->pad_y0 + pad_y1 - p->f_h + p->down_y, p->down_y);
    return p->out_w >= 1 && p->out_h >= 1;
}

// Launch on `stream` (a cudaStream_t). Returns null on success, else an error message.
const char* afv_upfirdn2d(const AfvUpfirdnParams& p, void* stream);
