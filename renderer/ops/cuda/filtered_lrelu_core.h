// filtered_lrelu block algorithm, shared by the CUDA kernel and the CPU emulation.
//
// One block computes one output tile of one image plane in four stages:
//   1. load the input samples the tile needs (plus halo) and add the bias;
//   2. upsample with fu by polyphase sums (only taps that meet an original
//      sample: k = k0, k0 + up, ... with k0 = (pad0 - m) mod up), as an x pass
//      then a y pass for a separable fu; scale, leaky ReLU, clamp;
//   3. filter with fd along x at the kept columns only (separable fd), or the
//      full 2-D sum at the kept samples; pack the 2-bit codes of the mid
//      samples this tile owns;
//   4. filter along y at the kept rows and write the output.
// Tiles own disjoint ranges of mid samples for the codes (tile t owns
// [t * tile * down, (t + 1) * tile * down); the last tile up to mid size).
#pragma once

#include "filtered_lrelu.h"

struct AfvFlreluPlan {
    int tile_w, tile_h;       // output tile (multiples of 4: whole code bytes per tile)
    int mid_tw, mid_th;       // largest mid tile
    int in_tw, in_th;         // largest input tile
    int in_stride, mid_stride, dnx_stride;  // row strides of s_in, s_upx / s_mid / codes, s_dnx (odd)
    int tiles_x, tiles_y;
    int off_fu, off_fd, off_in, off_upx, off_mid, off_code;  // in floats; s_dnx shares off_in
    int smem_floats;
};

AFV_HD void afv_flrelu_layout(const AfvFlreluParams& p, int tile_w, int tile_h, AfvFlreluPlan* q) {
    q->tile_w = tile_w;
    q->tile_h = tile_h;
    q->mid_tw = (tile_w - 1) * p.down + p.fd_w;
    q->mid_th = (tile_h - 1) * p.down + p.fd_h;
    q->in_tw = (q->mid_tw + p.fu_w - 1 + p.up - 1) / p.up;
    q->in_th = (q->mid_th + p.fu_h - 1 + p.up - 1) / p.up;
    // Odd row strides: threads walking down a column hit distinct shared-memory banks.
    q->in_stride = q->in_tw | 1;
    q->mid_stride = q->mid_tw | 1;
    q->dnx_stride = tile_w | 1;
    q->tiles_x = (p.out_w + tile_w - 1) / tile_w;
    q->tiles_y = (p.out_h + tile_h - 1) / tile_h;
    int in = q->in_stride * q->in_th, dnx = p.fd_2d ? 0 : q->mid_th * q->dnx_stride;
    q->off_fu = 0;
    q->off_fd = q->off_fu + (p.fu_2d ? p.fu_w * p.fu_h : p.fu_w);
    q->off_in = q->off_fd + (p.fd_2d ? p.fd_w * p.fd_h : p.fd_w);
    q->off_upx = q->off_in + afv_max(in, dnx);
    q->off_mid = q->off_upx + (p.fu_2d ? 0 : q->in_th * q->mid_stride);
    q->off_code = q->off_mid + q->mid_th * q->mid_stride;
    q->smem_floats = q->off_code + (p.mask ? (q->mid_th * q->mid_stride + 3) / 4 : 0);
}

// Relative cost of a layout: blocks x (thread iterations per block + fixed overhead).
AFV_HD double afv_flrelu_cost(const AfvFlreluParams& p, const AfvFlreluPlan& q, int threads) {
    double tu_x = (p.fu_w + p.up - 1) / p.up, tu_y = (p.fu_h + p.up - 1) / p.up;
    double mid = (double)q.mid_tw * q.mid_th;
    double work = (double)q.in_tw * q.in_th;
    work += p.fu_2d ? mid * tu_x * tu_y : (double)q.in_th * q.mid_tw * tu_x + mid * tu_y;
    work += p.fd_2d ? (double)q.tile_w * q.tile_h * p.fd_w * p.fd_h
                    : (double)q.mid_th * q.tile_w * p.fd_w + (double)q.tile_h * q.tile_w * p.fd_h;
    return (double)q.tiles_x * q.tiles_y * (work / threads + 8);
}

// Choose the cheapest tile that fits in `smem_limit_bytes`; false if none fits.
AFV_HD bool afv_flrelu_plan(const AfvFlreluParams& p, int smem_limit_bytes, int threads, AfvFlreluPlan* best) {
    bool found = false;
    double best_cost = 0;
    for (int tw = 64; tw >= 4; tw /= 2) {
        for (int th = 64; th >= 4; th /= 2) {
            AfvFlreluPlan q;
            afv_flrelu_layout(p, tw, th, &q);
            if (q.smem_floats * 4 > smem_limit_bytes)
                continue;
            double cost = afv_flrelu_cost(p, q, threads);
            if (!found || cost < best_cost) {
                *best = q;
                best_cost = cost;
                found = true;
            }
        }
    }
    return found;
}

// Scale, leaky ReLU and clamp one fu-filtered sum; `code` (if not null) gets its 2-bit gradient code.
AFV_HD float afv_flrelu_act(const AfvFlreluParams& p, float acc, unsigned char* code) {
    float v = acc * p.act_gain;
    unsigned char c = 0;
    if (!(v > 0)) {
        v *= p.slope;
        c = 1;
    }
    if (fabsf(v) > p.clamp) {
        v = v > 0 ? p.clamp : -p.clamp;
        c |= 2;
    }
    if (code)
        *code = c;
    return v;
}

// Filter taps in correlation order (flipped unless p.flip); run once per block.
template <class Exec>
AFV_DEV void afv_flrelu_load_filters(const AfvFlreluParams& p, const AfvFlreluPlan& q, float* smem, const Exec& ex) {
    ex.stage([&](int tid, int nt) {
        int nu = p.fu_2d ? p.fu_w * p.fu_h : p.fu_w;
        int nd = p.fd_2d ? p.fd_w * p.fd_h : p.fd_w;
        for (int i = tid; i < nu; i += nt)
            smem[q.off_fu + i] = p.fu ? p.fu[p.flip ? i : nu - 1 - i] : 1.0f;
        for (int i = tid; i < nd; i += nt)
            smem[q.off_fd + i] = p.fd ? p.fd[p.flip ? i : nd - 1 - i] : 1.0f;
    });
}

// Pack the 2-bit codes of the mid samples this tile owns into p.mask (run inside a stage).
AFV_DEV void afv_flrelu_pack_codes(const AfvFlreluParams& p, const AfvFlreluPlan& q, int bx, int by, int nc,
                                   int mx0, int my0, int mw, int mh, const unsigned char* s_code, int tid, int nt) {
    if (!p.mask)
        return;
    const bool last_x = bx == q.tiles_x - 1, last_y = by == q.tiles_y - 1;
    const int rows = (last_y ? p.mid_h : my0 + q.tile_h * p.down) - my0;
    const int byte0 = mx0 / 4;
    const int bytes = (last_x ? p.mask_row_bytes : (mx0 + q.tile_w * p.down) / 4) - byte0;
    unsigned char* dst = p.mask + ((long long)nc * p.mid_h + my0) * p.mask_row_bytes + byte0;
    for (int i = tid; i < rows * bytes; i += nt) {
        int r = i / bytes, bb = i - r * bytes;
        unsigned v = 0;
        for (int j = 0; j < 4; ++j) {
            int mx = (byte0 + bb) * 4 + j - mx0;
            if (r < mh && mx < mw)
                v |= (unsigned)s_code[r * q.mid_stride + mx] << (2 * j);
        }
        dst[(long long)r * p.mask_row_bytes + bb] = (unsigned char)v;
    }
}

// One output tile (bx, by) of image plane nc = n * channels + c.
template <typename T, class Exec>
AFV_DEV void afv_flrelu_block(const AfvFlreluParams& p, const AfvFlreluPlan& q, int bx, int by, int nc,
                              float* smem, const Exec& ex) {
    const int U = p.up, D = p.down;
    const int ox0 = bx * q.tile_w, tw = afv_min(q.tile_w, p.out_w - ox0);
    const int oy0 = by * q.tile_h, th = afv_min(q.tile_h, p.out_h - oy0);
    const int mx0 = ox0 * D, mw = (tw - 1) * D + p.fd_w;  // mid samples feeding the tile
    const int my0 = oy0 * D, mh = (th - 1) * D + p.fd_h;
    const int ix0 = afv_ceil_div(mx0 - p.pad_x0, U);        // input samples feeding those
    const int iy0 = afv_ceil_div(my0 - p.pad_y0, U);
    const int iw = afv_max(afv_floor_div(mx0 + mw - 1 + p.fu_w - 1 - p.pad_x0, U) - ix0 + 1, 0);
    const int ih = afv_max(afv_floor_div(my0 + mh - 1 + p.fu_h - 1 - p.pad_y0, U) - iy0 + 1, 0);
    const int n = nc / p.channels, c = nc - n * p.channels;
    const T* x = (const T*)p.x + n * p.x_stride[0] + c * p.x_stride[1];
    T* y = (T*)p.y + n * p.y_stride[0] + c * p.y_stride[1];
    const float bias = p.b ? afv_load((const T*)p.b + c) : 0.0f;
    const float* s_fu = smem + q.off_fu;
    const float* s_fd = smem + q.off_fd;
    float* s_in = smem + q.off_in;
    float* s_dnx = smem + q.off_in;  // s_in is dead by then
    float* s_upx = smem + q.off_upx;
    float* s_mid = smem + q.off_mid;
    unsigned char* s_code = p.mask ? (unsigned char*)(smem + q.off_code) : nullptr;  // only with a mask

    // 1. Input tile plus bias; zero padding outside the image.
    ex.stage([&](int tid, int nt) {
        for (int i = tid; i < ih * iw; i += nt) {
            int r = i / iw, col = i - r * iw;
            int gy = iy0 + r, gx = ix0 + col;
            float v = 0;
            if (gy >= 0 && gy < p.in_h && gx >= 0 && gx < p.in_w)
                v = afv_load(x + gy * p.x_stride[2] + gx * p.x_stride[3]) + bias;
            s_in[r * q.in_stride + col] = v;
        }
    });

    // 2. Upsample and filter with fu, then the activation.
    if (!p.fu_2d) {
        ex.stage([&](int tid, int nt) {
            for (int i = tid; i < ih * mw; i += nt) {
                int r = i / mw, mx = i - r * mw;
                int base = mx0 + mx - p.pad_x0;
                int k = afv_mod(-base, U);
                const float* src = s_in + r * q.in_stride + ((base + k) / U - ix0);
                float acc = 0;
                for (; k < p.fu_w; k += U)
                    acc += s_fu[k] * *src++;
                s_upx[r * q.mid_stride + mx] = acc;
            }
        });
        ex.stage([&](int tid, int nt) {
            for (int i = tid; i < mh * mw; i += nt) {
                int my = i / mw, mx = i - my * mw;
                int base = my0 + my - p.pad_y0;
                int k = afv_mod(-base, U);
                const float* src = s_upx + ((base + k) / U - iy0) * q.mid_stride + mx;
                float acc = 0;
                for (; k < p.fu_h; k += U, src += q.mid_stride)
                    acc += s_fu[k] * *src;
                s_mid[my * q.mid_stride + mx] = afv_flrelu_act(p, acc, s_code ? s_code + my * q.mid_stride + mx : nullptr);
            }
        });
    } else {
        ex.stage([&](int tid, int nt) {
            for (int i = tid; i < mh * mw; i += nt) {
                int my = i / mw, mx = i - my * mw;
                int base_x = mx0 + mx - p.pad_x0, base_y = my0 + my - p.pad_y0;
                int kx0 = afv_mod(-base_x, U), ky = afv_mod(-base_y, U);
                const float* row = s_in + ((base_y + ky) / U - iy0) * q.in_stride + ((base_x + kx0) / U - ix0);
                float acc = 0;
                for (; ky < p.fu_h; ky += U, row += q.in_stride) {
                    const float* src = row;
                    for (int kx = kx0; kx < p.fu_w; kx += U)
                        acc += s_fu[ky * p.fu_w + kx] * *src++;
                }
                s_mid[my * q.mid_stride + mx] = afv_flrelu_act(p, acc, s_code ? s_code + my * q.mid_stride + mx : nullptr);
            }
        });
    }

    // 3. Down filter (x pass, or the whole 2-D sum) and the gradient codes.
    ex.stage([&](int tid, int nt) {
        afv_flrelu_pack_codes(p, q, bx, by, nc, mx0, my0, mw, mh, s_code, tid, nt);
        if (!p.fd_2d) {
            for (int i = tid; i < mh * tw; i += nt) {
                int my = i / tw, ox = i - my * tw;
                const float* src = s_mid + my * q.mid_stride + ox * D;
                float acc = 0;
                for (int k = 0; k < p.fd_w; ++k)
                    acc += s_fd[k] * src[k];
                s_dnx[my * q.dnx_stride + ox] = acc;
            }
        } else {
            for (int i = tid; i < th * tw; i += nt) {
                int oy = i / tw, ox = i - oy * tw;
                const float* src = s_mid + oy * D * q.mid_stride + ox * D;
                float acc = 0;
                for (int ky = 0; ky < p.fd_h; ++ky, src += q.mid_stride)
                    for (int kx = 0; kx < p.fd_w; ++kx)
                        acc += s_fd[ky * p.fd_w + kx] * src[kx];
                afv_store(y + (oy0 + oy) * p.y_stride[2] + (ox0 + ox) * p.y_stride[3], acc);
            }
        }
    });

    // 4. Down filter along y (separable fd).
    if (!p.fd_2d) {
        ex.stage([&](int tid, int nt) {
            for (int i = tid; i < th * tw; i += nt) {
                int oy = i / tw, ox = i - oy * tw;
                const float* src = s_dnx + oy * D * q.dnx_stride + ox;
                float acc = 0;
                for (int k = 0; k < p.fd_h; ++k, src += q.dnx_stride)
                    acc += s_fd[k] * *src;
                afv_store(y + (oy0 + oy) * p.y_stride[2] + (ox0 + ox) * p.y_stride[3], acc);
            }
        });
    }
}

// Whole grid (the CPU emulation runs every block through this; each CUDA block runs its share).
template <typename T, class Exec>
AFV_DEV void afv_flrelu_grid(const AfvFlreluParams& p, const AfvFlreluPlan& q, int grid_x, int grid_y, int grid_z,
                             int bx, int by, int bz, float* smem, const Exec& ex) {
    afv_flrelu_load_filters(p, q, smem, ex);
    for (int nc = bz; nc < p.batch * p.channels; nc += grid_z)
        for (int ty = by; ty < q.tiles_y; ty += grid_y)
            for (int tx = bx; tx < q.tiles_x; tx += grid_x)
                afv_flrelu_block<T>(p, q, tx, ty, nc, smem, ex);
}

// --- Fast path -------------------------------------------------------------------------------
//
// For the configurations of the published networks (separable fu of KU taps, fd of KD taps,
// separable or 2-D, fixed up/down), everything is known at compile time. Same stages and
// shared memory as above, but every thread computes a strip of samples from a window of
// inputs and the filter taps held in registers, which cuts shared-memory loads per
// multiply-add several times:
//   up passes:   strips of SU phase groups (U * SU samples) from SU + KU/U inputs;
//   down passes: strips of SD outputs from (SD - 1) * D + KD inputs;
//   2-D down:    column strips of SY2 outputs, one filter column at a time.
// Thread mappings put consecutive threads on consecutive columns, or on consecutive rows
// when the stride between rows is odd (distinct banks).

template <int U, int D, int KU, int KD, bool FD2D>
struct AfvFlreluFast {
    static_assert(KU % U == 0, "up taps must be a multiple of the up factor");
    static constexpr int TU = KU / U;             // taps per phase of the up filter
    static constexpr int SU = 4;                  // phase groups per up strip
    static constexpr int WU = SU + TU;            // inputs per up strip
    static constexpr int SD = 4;                  // outputs per separable down strip
    static constexpr int WD = (SD - 1) * D + KD;  // inputs per separable down strip
    static constexpr int SY2 = 8;                 // outputs per 2-D down column strip
    static constexpr int WY2 = (SY2 - 1) * D + KD;
};

// Fast configurations: (id, up, down, fu taps, fd taps, fd 2-D).
#define AFV_FLRELU_FAST_CONFIGS(X) \
    X(0, 2, 2, 12, 12, false)      \
    X(1, 4, 2, 24, 12, false)      \
    X(2, 2, 2, 12, 12, true)       \
    X(3, 4, 2, 24, 12, true)

template <int U, int D, int KU, int KD, bool FD2D>
AFV_HD bool afv_flrelu_is_fast(const AfvFlreluParams& p) {
    return p.up == U && p.down == D && !p.fu_2d && p.fu_w == KU && p.fd_w == KD && p.fd_h == KD &&
           (p.fd_2d != 0) == FD2D && p.fu && p.fd;
}

// Id of the fast configuration matching p, or -1 (generic path).
AFV_HD int afv_flrelu_fast_config(const AfvFlreluParams& p) {
#define AFV_FLRELU_MATCH(id, u, d, ku, kd, fd2d) \
    if (afv_flrelu_is_fast<u, d, ku, kd, fd2d>(p)) \
        return id;
    AFV_FLRELU_FAST_CONFIGS(AFV_FLRELU_MATCH)
#undef AFV_FLRELU_MATCH
    return -1;
}

// Filters in correlation order; a 2-D fd is stored transposed ([kx][ky]: filter columns contiguous).
template <int KU, int KD, bool FD2D, class Exec>
AFV_DEV void afv_flrelu_load_filters_fast(const AfvFlreluParams& p, const AfvFlreluPlan& q, float* smem,
                                          const Exec& ex) {
    ex.stage([&](int tid, int nt) {
        for (int i = tid; i < KU; i += nt)
            smem[q.off_fu + i] = p.fu[p.flip ? i : KU - 1 - i];
        const int nd = FD2D ? KD * KD : KD;
        for (int i = tid; i < nd; i += nt) {
            float v = p.fd[p.flip ? i : nd - 1 - i];  // g[ky][kx] with i = ky * KD + kx
            smem[q.off_fd + (FD2D ? (i % KD) * KD + i / KD : i)] = v;
        }
    });
}

template <typename T, int U, int D, int KU, int KD, bool FD2D, class Exec>
AFV_DEV void afv_flrelu_block_fast(const AfvFlreluParams& p, const AfvFlreluPlan& q, int bx, int by, int nc,
                                   float* smem, const Exec& ex) {
    typedef AfvFlreluFast<U, D, KU, KD, FD2D> F;
    const int ox0 = bx * q.tile_w, tw = afv_min(q.tile_w, p.out_w - ox0);
    const int oy0 = by * q.tile_h, th = afv_min(q.tile_h, p.out_h - oy0);
    const int mx0 = ox0 * D, mw = (tw - 1) * D + KD;
    const int my0 = oy0 * D, mh = (th - 1) * D + KD;
    const int ix0 = afv_ceil_div(mx0 - p.pad_x0, U);
    const int iy0 = afv_ceil_div(my0 - p.pad_y0, U);
    const int iw = afv_max(afv_floor_div(mx0 + mw - 1 + KU - 1 - p.pad_x0, U) - ix0 + 1, 0);
    const int ih = afv_max(afv_floor_div(my0 + mh - 1 + KU - 1 - p.pad_y0, U) - iy0 + 1, 0);
    const int n = nc / p.channels, c = nc - n * p.channels;
    const T* x = (const T*)p.x + n * p.x_stride[0] + c * p.x_stride[1];
    T* y = (T*)p.y + n * p.y_stride[0] + c * p.y_stride[1];
    const float bias = p.b ? afv_load((const T*)p.b + c) : 0.0f;
    const float* s_fu = smem + q.off_fu;
    const float* s_fd = smem + q.off_fd;
    float* s_in = smem + q.off_in;
    float* s_dnx = smem + q.off_in;
    float* s_upx = smem + q.off_upx;
    float* s_mid = smem + q.off_mid;
    unsigned char* s_code = p.mask ? (unsigned char*)(smem + q.off_code) : nullptr;

    // 1. Input tile plus bias.
    ex.stage([&](int tid, int nt) {
        for (int i = tid; i < ih * iw; i += nt) {
            int r = i / iw, col = i - r * iw;
            int gy = iy0 + r, gx = ix0 + col;
            float v = 0;
            if (gy >= 0 && gy < p.in_h && gx >= 0 && gx < p.in_w)
                v = afv_load(x + gy * p.x_stride[2] + gx * p.x_stride[3]) + bias;
            s_in[r * q.in_stride + col] = v;
        }
    });

    // 2a. Up along x. Strips start at a column of phase 0 (k0 = 0); within a strip, sample
    // g * U + ph has k0 = (U - ph) % U and reads inputs from g + (ph > 0) on.
    const int ax = afv_mod(p.pad_x0 - mx0, U);
    const int sx0 = ax > 0 ? ax - U : 0;
    const int nsx = (mw - sx0 + U * F::SU - 1) / (U * F::SU);
    ex.stage([&](int tid, int nt) {
        float f[KU];
AFV_UNROLL
        for (int k = 0; k < KU; ++k)
            f[k] = s_fu[k];
        for (int i = tid; i < ih * nsx; i += nt) {
            const int r = i % ih, m0 = sx0 + (i / ih) * U * F::SU;
            const int j0 = (mx0 + m0 - p.pad_x0) / U - ix0;
            const float* src = s_in + r * q.in_stride;
            float w[F::WU];
AFV_UNROLL
            for (int k = 0; k < F::WU; ++k)
                w[k] = (j0 + k >= 0 && j0 + k < iw) ? src[j0 + k] : 0.0f;
            float* dst = s_upx + r * q.mid_stride;
AFV_UNROLL
            for (int g = 0; g < F::SU; ++g) {
AFV_UNROLL
                for (int ph = 0; ph < U; ++ph) {
                    const int k0 = (U - ph) % U, off = g + (ph > 0 ? 1 : 0);
                    float acc = 0;
AFV_UNROLL
                    for (int t = 0; t < F::TU; ++t)
                        acc += f[k0 + U * t] * w[off + t];
                    const int mx = m0 + g * U + ph;
                    if (mx >= 0 && mx < mw)
                        dst[mx] = acc;
                }
            }
        }
    });

    // 2b. Up along y, then the activation.
    const int ay = afv_mod(p.pad_y0 - my0, U);
    const int sy0 = ay > 0 ? ay - U : 0;
    const int nsy = (mh - sy0 + U * F::SU - 1) / (U * F::SU);
    ex.stage([&](int tid, int nt) {
        float f[KU];
AFV_UNROLL
        for (int k = 0; k < KU; ++k)
            f[k] = s_fu[k];
        for (int i = tid; i < mw * nsy; i += nt) {
            const int mx = i % mw, m0 = sy0 + (i / mw) * U * F::SU;
            const int j0 = (my0 + m0 - p.pad_y0) / U - iy0;
            float w[F::WU];
AFV_UNROLL
            for (int k = 0; k < F::WU; ++k)
                w[k] = (j0 + k >= 0 && j0 + k < ih) ? s_upx[(j0 + k) * q.mid_stride + mx] : 0.0f;
AFV_UNROLL
            for (int g = 0; g < F::SU; ++g) {
AFV_UNROLL
                for (int ph = 0; ph < U; ++ph) {
                    const int k0 = (U - ph) % U, off = g + (ph > 0 ? 1 : 0);
                    float acc = 0;
AFV_UNROLL
                    for (int t = 0; t < F::TU; ++t)
                        acc += f[k0 + U * t] * w[off + t];
                    const int my = m0 + g * U + ph;
                    if (my >= 0 && my < mh)
                        s_mid[my * q.mid_stride + mx] =
                            afv_flrelu_act(p, acc, s_code ? s_code + my * q.mid_stride + mx : nullptr);
                }
            }
        }
    });

    // 3. Down: x pass (separable) or the whole 2-D sum; codes.
    ex.stage([&](int tid, int nt) {
        afv_flrelu_pack_codes(p, q, bx, by, nc, mx0, my0, mw, mh, s_code, tid, nt);
        if (!FD2D) {
            float g[KD];
AFV_UNROLL
            for (int k = 0; k < KD; ++k)
                g[k] = s_fd[k];
            const int ns = (tw + F::SD - 1) / F::SD;
            for (int i = tid; i < mh * ns; i += nt) {
                const int my = i % mh, oxa = (i / mh) * F::SD;
                const float* src = s_mid + my * q.mid_stride + oxa * D;
                const int valid = mw - oxa * D;
                float w[F::WD];
AFV_UNROLL
                for (int k = 0; k < F::WD; ++k)
                    w[k] = k < valid ? src[k] : 0.0f;
AFV_UNROLL
                for (int s = 0; s < F::SD; ++s) {
                    float acc = 0;
AFV_UNROLL
                    for (int k = 0; k < KD; ++k)
                        acc += g[k] * w[s * D + k];
                    if (oxa + s < tw)
                        s_dnx[my * q.dnx_stride + oxa + s] = acc;
                }
            }
        } else {
            const int ns = (th + F::SY2 - 1) / F::SY2;
            for (int i = tid; i < tw * ns; i += nt) {
                const int ox = i % tw, oya = (i / tw) * F::SY2;
                const float* src = s_mid + oya * D * q.mid_stride + ox * D;
                const int valid = mh - oya * D;
                float acc[F::SY2];
AFV_UNROLL
                for (int s = 0; s < F::SY2; ++s)
                    acc[s] = 0;
AFV_NO_UNROLL
                for (int kx = 0; kx < KD; ++kx) {
                    float g[KD];  // filter column kx
AFV_UNROLL
                    for (int ky = 0; ky < KD; ++ky)
                        g[ky] = s_fd[kx * KD + ky];
AFV_UNROLL
                    for (int r = 0; r < F::WY2; ++r) {
                        const float v = r < valid ? src[r * q.mid_stride + kx] : 0.0f;
AFV_UNROLL
                        for (int s = 0; s < F::SY2; ++s) {
                            const int ky = r - s * D;
                            if (ky >= 0 && ky < KD)
                                acc[s] += g[ky] * v;
                        }
                    }
                }
AFV_UNROLL
                for (int s = 0; s < F::SY2; ++s)
                    if (oya + s < th)
                        afv_store(y + (oy0 + oya + s) * p.y_stride[2] + (ox0 + ox) * p.y_stride[3], acc[s]);
            }
        }
    });

    // 4. Down along y (separable fd).
    if (!FD2D) {
        ex.stage([&](int tid, int nt) {
            float g[KD];
AFV_UNROLL
            for (int k = 0; k < KD; ++k)
                g[k] = s_fd[k];
            const int ns = (th + F::SD - 1) / F::SD;
            for (int i = tid; i < tw * ns; i += nt) {
                const int ox = i % tw, oya = (i / tw) * F::SD;
                const float* src = s_dnx + oya * D * q.dnx_stride + ox;
                const int valid = mh - oya * D;
                float w[F::WD];
AFV_UNROLL
                for (int k = 0; k < F::WD; ++k)
                    w[k] = k < valid ? src[k * q.dnx_stride] : 0.0f;
AFV_UNROLL
                for (int s = 0; s < F::SD; ++s) {
                    float acc = 0;
AFV_UNROLL
                    for (int k = 0; k < KD; ++k)
                        acc += g[k] * w[s * D + k];
                    if (oya + s < th)
                        afv_store(y + (oy0 + oya + s) * p.y_stride[2] + (ox0 + ox) * p.y_stride[3], acc);
                }
            }
        });
    }
}

template <typename T, int U, int D, int KU, int KD, bool FD2D, class Exec>
AFV_DEV void afv_flrelu_grid_fast(const AfvFlreluParams& p, const AfvFlreluPlan& q, int grid_x, int grid_y,
                                  int grid_z, int bx, int by, int bz, float* smem, const Exec& ex) {
    afv_flrelu_load_filters_fast<KU, KD, FD2D>(p, q, smem, ex);
    for (int nc = bz; nc < p.batch * p.channels; nc += grid_z)
        for (int ty = by; ty < q.tiles_y; ty += grid_y)
            for (int tx = bx; tx < q.tiles_x; tx += grid_x)
                afv_flrelu_block_fast<T, U, D, KU, KD, FD2D>(p, q, tx, ty, nc, smem, ex);
}

AFV_HD void afv_flrelu_mask_grad_elem(const AfvFlreluGradParams& p, long long i) {
    long long row = i / p.mid_w;
    int col = (int)(i - row * p.mid_w);
    unsigned code = (p.mask[row * p.mask_row_bytes + col / 4] >> (2 * (col & 3))) & 3u;
    p.out[i] = (code & 2) ? 0.0f : p.g[i] * afv_flrelu_code_grad(code, p.gain, p.slope);
}
