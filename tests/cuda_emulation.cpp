// CPU emulation of the CUDA kernels in renderer/ops/cuda, for tests on machines without a GPU.
//
// Runs the same block algorithms as the kernels (the *_core.h headers), block
// by block over the same grid, each barrier-delimited stage once per emulated
// thread index. Shared memory is poisoned with NaN and followed by a guard
// zone that is checked after every block, so reads of unwritten or
// out-of-range shared memory show up as NaN results and writes out of range
// as an error code. float32 only (the kernels' float16 path differs only in
// the element loads and stores).
#include <math.h>
#include <string.h>

#include <vector>

#include "bias_act_core.h"
#include "filtered_lrelu_core.h"
#include "upfirdn2d_core.h"

namespace {

constexpr int kGuard = 256;

std::vector<float> poisoned_smem(int floats) {
    return std::vector<float>(floats + kGuard, NAN);
}

bool guard_intact(const std::vector<float>& smem, int floats) {
    for (int i = floats; i < floats + kGuard; ++i)
        if (!isnan(smem[i]))
            return false;
    return true;
}

void copy_strides(long long* dst, const long long* src) {
    for (int i = 0; i < 4; ++i)
        dst[i] = src[i];
}

}  // namespace

extern "C" {

// Status: 0 ok, 1 empty output, 2 no tile fits, 3 shared-memory guard overwritten.
// info (out): out_h, out_w, mid_h, mid_w, mask_row_bytes, tile_w, tile_h, smem_bytes, fast config (-1: generic).
int emu_filtered_lrelu(const float* x, const float* b, const float* fu, const float* fd, float* y,
                       unsigned char* mask, const int* dims, const long long* x_stride, const long long* y_stride,
                       const float* scalars, int threads, int smem_limit, int max_grid_y, int max_grid_z,
                       int dry_run, int force_generic, int* info) {
    // dims: batch, channels, in_h, in_w, up, down, pad_x0, pad_x1, pad_y0, pad_y1,
    //       fu_w, fu_h, fu_2d, fd_w, fd_h, fd_2d, flip; scalars: gain, slope, clamp.
    AfvFlreluParams p;
    memset(&p, 0, sizeof(p));
    p.x = x; p.b = b; p.fu = fu; p.fd = fd; p.y = y; p.mask = mask;
    p.dtype = AFV_FLOAT32;
    p.batch = dims[0]; p.channels = dims[1]; p.in_h = dims[2]; p.in_w = dims[3];
    p.up = dims[4]; p.down = dims[5]; p.pad_x0 = dims[6]; p.pad_y0 = dims[8];
    p.fu_w = dims[10]; p.fu_h = dims[11]; p.fu_2d = dims[12];
    p.fd_w = dims[13]; p.fd_h = dims[14]; p.fd_2d = dims[15]; p.flip = dims[16];
    p.gain = scalars[0]; p.slope = scalars[1]; p.clamp = scalars[2];
    copy_strides(p.x_stride, x_stride);
    copy_strides(p.y_stride, y_stride);
    bool ok = afv_flrelu_setup(&p, dims[7], dims[9]);
    info[8] = -1;
    info[0] = p.out_h; info[1] = p.out_w; info[2] = p.mid_h; info[3] = p.mid_w; info[4] = p.mask_row_bytes;
    if (!ok)
        return 1;
    AfvFlreluPlan q;
    if (!afv_flrelu_plan(p, smem_limit, threads, &q))
        return 2;
    const int config = force_generic ? -1 : afv_flrelu_fast_config(p);  // as the launcher chooses
    info[5] = q.tile_w; info[6] = q.tile_h; info[7] = q.smem_floats * 4; info[8] = config;
    if (dry_run)
        return 0;
    int grid_y = afv_min(q.tiles_y, max_grid_y), grid_z = afv_min(p.batch * p.channels, max_grid_z);
    AfvCpuExec ex{threads};
    for (int bz = 0; bz < grid_z; ++bz)
        for (int by = 0; by < grid_y; ++by)
            for (int bx = 0; bx < q.tiles_x; ++bx) {
                std::vector<float> smem = poisoned_smem(q.smem_floats);
                if (q.off_code < q.smem_floats)  // codes: 0xff = never written
                    memset(smem.data() + q.off_code, 0xff, (q.smem_floats - q.off_code) * 4);
                switch (config) {
#define AFV_EMU_FAST(id, u, d, ku, kd, fd2d)                                                               \
                    case id:                                                                               \
                        afv_flrelu_grid_fast<float, u, d, ku, kd, fd2d>(p, q, q.tiles_x, grid_y, grid_z, bx, by, \
                                                                        bz, smem.data(), ex);            \
                        break;
                    AFV_FLRELU_FAST_CONFIGS(AFV_EMU_FAST)
#undef AFV_EMU_FAST
                    default:
                        afv_flrelu_grid<float>(p, q, q.tiles_x, grid_y, grid_z, bx, by, bz, smem.data(), ex);
                }
                if (!guard_intact(smem, q.smem_floats))
                    return 3;
            }
    return 0;
}

// Status: 0 ok, 1 empty output, 2 no tile fits, 3 shared-memory guard overwritten.
// info (out): out_h, out_w, tile_w, tile_h, smem_bytes.
int emu_upfirdn2d(const float* x, const float* f, float* y, const int* dims, const long long* x_stride,
                  const long long* y_stride, float gain, int threads, int smem_limit, int max_grid_y,
                  int max_grid_z, int dry_run, int* info) {
    // dims: batch, channels, in_h, in_w, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1,
    //       f_w, f_h, f_2d, flip.
    AfvUpfirdnParams p;
    memset(&p, 0, sizeof(p));
    p.x = x; p.f = f; p.y = y; p.dtype = AFV_FLOAT32;
    p.batch = dims[0]; p.channels = dims[1]; p.in_h = dims[2]; p.in_w = dims[3];
    p.up_x = dims[4]; p.up_y = dims[5]; p.down_x = dims[6]; p.down_y = dims[7];
    p.pad_x0 = dims[8]; p.pad_y0 = dims[10];
    p.f_w = dims[12]; p.f_h = dims[13]; p.f_2d = dims[14]; p.flip = dims[15];
    p.gain = gain;
    copy_strides(p.x_stride, x_stride);
    copy_strides(p.y_stride, y_stride);
    bool ok = afv_upfirdn_setup(&p, dims[9], dims[11]);
    info[0] = p.out_h; info[1] = p.out_w;
    if (!ok)
        return 1;
    AfvUpfirdnPlan q;
    if (!afv_upfirdn_plan(p, smem_limit, threads, &q))
        return 2;
    info[2] = q.tile_w; info[3] = q.tile_h; info[4] = q.smem_floats * 4;
    if (dry_run)
        return 0;
    int grid_y = afv_min(q.tiles_y, max_grid_y), grid_z = afv_min(p.batch * p.channels, max_grid_z);
    AfvCpuExec ex{threads};
    for (int bz = 0; bz < grid_z; ++bz)
        for (int by = 0; by < grid_y; ++by)
            for (int bx = 0; bx < q.tiles_x; ++bx) {
                std::vector<float> smem = poisoned_smem(q.smem_floats);
                afv_upfirdn_grid<float>(p, q, q.tiles_x, grid_y, grid_z, bx, by, bz, smem.data(), ex);
                if (!guard_intact(smem, q.smem_floats))
                    return 3;
            }
    return 0;
}

void emu_bias_act(const float* x, const float* b, const float* gy, float* out, long long numel, long long inner,
                  int channels, int act, float alpha, float gain, float clamp, int backward) {
    AfvBiasActParams p;
    memset(&p, 0, sizeof(p));
    p.x = x; p.b = b; p.gy = gy; p.out = out; p.dtype = AFV_FLOAT32;
    p.numel = numel; p.inner = inner; p.channels = channels;
    p.act = act; p.alpha = alpha; p.gain = gain; p.clamp = clamp;
    for (long long i = 0; i < numel; ++i) {
        if (backward)
            afv_bias_act_backward_elem<float>(p, i);
        else
            afv_bias_act_forward_elem<float>(p, i);
    }
}

void emu_flrelu_mask_grad(const float* g, float* out, const unsigned char* mask, long long rows, int mid_w,
                          int mask_row_bytes, float gain, float slope) {
    AfvFlreluGradParams p{g, out, mask, rows, mid_w, mask_row_bytes, gain, slope};
    for (long long i = 0; i < rows * mid_w; ++i)
        afv_flrelu_mask_grad_elem(p, i);
}

}  // extern "C"
