// upfirdn2d block algorithm, shared by the CUDA kernel and the CPU emulation.
//
// One block computes a tile of output samples of one image plane: it loads
// the input samples the tile needs (plus halo) into shared memory, then
// evaluates the polyphase sums directly: for output o along an axis, the
// taps that meet a non-zero (original) sample are k = k0, k0 + up, ...,
// with k0 = (pad0 - o*down) mod up, reading consecutive input samples.
// A separable filter runs as an x pass into shared memory, then a y pass.
#pragma once

#include "upfirdn2d.h"

struct AfvUpfirdnPlan {
    int tile_w, tile_h;       // output tile
    int in_tw, in_th;         // largest input tile (row stride of s_in: in_tw)
    int tiles_x, tiles_y;
    int off_f, off_in, off_t; // shared-memory offsets in floats
    int smem_floats;
};

// Number of input samples feeding `tile` consecutive outputs (upper bound).
AFV_HD int afv_upfirdn_span(int tile, int down, int taps, int up) {
    return ((tile - 1) * down + taps + up - 1) / up;
}

AFV_HD void afv_upfirdn_layout(const AfvUpfirdnParams& p, int tile_w, int tile_h, AfvUpfirdnPlan* q) {
    q->tile_w = tile_w;
    q->tile_h = tile_h;
    q->in_tw = afv_upfirdn_span(tile_w, p.down_x, p.f_w, p.up_x);
    q->in_th = afv_upfirdn_span(tile_h, p.down_y, p.f_h, p.up_y);
    q->tiles_x = (p.out_w + tile_w - 1) / tile_w;
    q->tiles_y = (p.out_h + tile_h - 1) / tile_h;
    q->off_f = 0;
    q->off_in = p.f_2d ? p.f_w * p.f_h : p.f_w;
    q->off_t = q->off_in + q->in_tw * q->in_th;
    q->smem_floats = q->off_t + (p.f_2d ? 0 : q->in_th * tile_w);
}

// Relative cost of a layout: blocks x (thread iterations per block + fixed overhead).
AFV_HD double afv_upfirdn_cost(const AfvUpfirdnParams& p, const AfvUpfirdnPlan& q, int threads) {
    double taps_x = (p.f_w + p.up_x - 1) / p.up_x, taps_y = (p.f_h + p.up_y - 1) / p.up_y;
    double load = (double)q.in_tw * q.in_th;
    double work = p.f_2d ? (double)q.tile_w * q.tile_h * taps_x * taps_y
                         : (double)q.in_th * q.tile_w * taps_x + (double)q.tile_h * q.tile_w * taps_y;
    double per_block = (load + work) / threads + (load > threads ? 0 : 1) + (work > threads ? 0 : 1) + 4;
    return (double)q.tiles_x * q.tiles_y * per_block;
}

// Choose the cheapest tile that fits in `smem_limit_bytes`; false if none fits.
AFV_HD bool afv_upfirdn_plan(const AfvUpfirdnParams& p, int smem_limit_bytes, int threads, AfvUpfirdnPlan* best) {
    bool found = false;
    double best_cost = 0;
    for (int tw = 128; tw >= 1; tw /= 2) {
        for (int th = 64; th >= 1; th /= 2) {
            if (tw * th > 4096)
                continue;
            AfvUpfirdnPlan q;
            afv_upfirdn_layout(p, tw, th, &q);
            if (q.smem_floats * 4 > smem_limit_bytes)
                continue;
            double cost = afv_upfirdn_cost(p, q, threads);
            if (!found || cost < best_cost) {
                *best = q;
                best_cost = cost;
                found = true;
            }
        }
    }
    return found;
}

// Filter taps in correlation order (flipped unless p.flip); run once per block.
template <class Exec>
AFV_DEV void afv_upfirdn_load_filter(const AfvUpfirdnParams& p, const AfvUpfirdnPlan& q, float* smem, const Exec& ex) {
    ex.stage([&](int tid, int nt) {
        int n = p.f_2d ? p.f_w * p.f_h : p.f_w;
        for (int i = tid; i < n; i += nt)
            smem[q.off_f + i] = p.f ? p.f[p.flip ? i : n - 1 - i] : 1.0f;
    });
}

// One output tile (bx, by) of image plane nc = n * channels + c.
template <typename T, class Exec>
AFV_DEV void afv_upfirdn_block(const AfvUpfirdnParams& p, const AfvUpfirdnPlan& q, int bx, int by, int nc,
                               float* smem, const Exec& ex) {
    const int ox0 = bx * q.tile_w, tw = afv_min(q.tile_w, p.out_w - ox0);
    const int oy0 = by * q.tile_h, th = afv_min(q.tile_h, p.out_h - oy0);
    const int ix0 = afv_ceil_div(ox0 * p.down_x - p.pad_x0, p.up_x);
    const int iy0 = afv_ceil_div(oy0 * p.down_y - p.pad_y0, p.up_y);
    const int iw = afv_max(afv_floor_div((ox0 + tw - 1) * p.down_x + p.f_w - 1 - p.pad_x0, p.up_x) - ix0 + 1, 0);
    const int ih = afv_max(afv_floor_div((oy0 + th - 1) * p.down_y + p.f_h - 1 - p.pad_y0, p.up_y) - iy0 + 1, 0);
    const int n = nc / p.channels, c = nc - n * p.channels;
    const T* x = (const T*)p.x + n * p.x_stride[0] + c * p.x_stride[1];
    T* y = (T*)p.y + n * p.y_stride[0] + c * p.y_stride[1];
    const float* s_f = smem + q.off_f;
    float* s_in = smem + q.off_in;
    float* s_t = smem + q.off_t;

    // Input tile with halo; zeros outside the image.
    ex.stage([&](int tid, int nt) {
        for (int i = tid; i < ih * iw; i += nt) {
            int r = i / iw, col = i - r * iw;
            int gy = iy0 + r, gx = ix0 + col;
            float v = 0;
            if (gy >= 0 && gy < p.in_h && gx >= 0 && gx < p.in_w)
                v = afv_load(x + gy * p.x_stride[2] + gx * p.x_stride[3]);
            s_in[r * q.in_tw + col] = v;
        }
    });
    if (!p.f_2d) {
        // x pass: every input row of the tile, output columns.
        ex.stage([&](int tid, int nt) {
            for (int i = tid; i < ih * tw; i += nt) {
                int r = i / tw, ox = i - r * tw;
                int base = (ox0 + ox) * p.down_x - p.pad_x0;
                int k = afv_mod(-base, p.up_x);
                const float* src = s_in + r * q.in_tw + ((base + k) / p.up_x - ix0);
                float acc = 0;
                for (; k < p.f_w; k += p.up_x)
                    acc += s_f[k] * *src++;
                s_t[r * q.tile_w + ox] = acc;
            }
        });
        // y pass: output rows, written to global memory.
        ex.stage([&](int tid, int nt) {
            for (int i = tid; i < th * tw; i += nt) {
                int oy = i / tw, ox = i - oy * tw;
                int base = (oy0 + oy) * p.down_y - p.pad_y0;
                int k = afv_mod(-base, p.up_y);
                const float* src = s_t + ((base + k) / p.up_y - iy0) * q.tile_w + ox;
                float acc = 0;
                for (; k < p.f_h; k += p.up_y, src += q.tile_w)
                    acc += s_f[k] * *src;
                afv_store(y + (oy0 + oy) * p.y_stride[2] + (ox0 + ox) * p.y_stride[3], acc * p.gain);
            }
        });
    } else {
        ex.stage([&](int tid, int nt) {
            for (int i = tid; i < th * tw; i += nt) {
                int oy = i / tw, ox = i - oy * tw;
                int base_x = (ox0 + ox) * p.down_x - p.pad_x0, base_y = (oy0 + oy) * p.down_y - p.pad_y0;
                int kx0 = afv_mod(-base_x, p.up_x), ky = afv_mod(-base_y, p.up_y);
                const float* row = s_in + ((base_y + ky) / p.up_y - iy0) * q.in_tw + ((base_x + kx0) / p.up_x - ix0);
                float acc = 0;
                for (; ky < p.f_h; ky += p.up_y, row += q.in_tw) {
                    const float* src = row;
                    for (int kx = kx0; kx < p.f_w; kx += p.up_x)
                        acc += s_f[ky * p.f_w + kx] * *src++;
                }
                afv_store(y + (oy0 + oy) * p.y_stride[2] + (ox0 + ox) * p.y_stride[3], acc * p.gain);
            }
        });
    }
}

// Whole grid (used by the CPU emulation; the CUDA kernel distributes the same loops over blocks).
template <typename T, class Exec>
AFV_DEV void afv_upfirdn_grid(const AfvUpfirdnParams& p, const AfvUpfirdnPlan& q, int grid_x, int grid_y, int grid_z,
                              int bx, int by, int bz, float* smem, const Exec& ex) {
    afv_upfirdn_load_filter(p, q, smem, ex);
    for (int nc = bz; nc < p.batch * p.channels; nc += grid_z)
        for (int ty = by; ty < q.tiles_y; ty += grid_y)
            for (int tx = bx; tx < q.tiles_x; tx += grid_x)
                afv_upfirdn_block<T>(p, q, tx, ty, nc, smem, ex);
}
