// Python bindings of the CUDA ops (one torch extension, built on first use by renderer/ops/cuda_build.py).
// Checks tensors, allocates outputs, fills the parameter structs and calls the launchers
// of the .cu files on the current CUDA stream. The Python wrappers validate arguments
// with friendly messages first; these checks guard the kernels' assumptions.
#include <torch/extension.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <climits>
#include <tuple>

#include "bias_act.h"
#include "filtered_lrelu.h"
#include "upfirdn2d.h"

namespace {

using torch::Tensor;
using OptTensor = c10::optional<Tensor>;

void* current_stream(const Tensor& x) {
    return (void*)c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
}

int dtype_code(const Tensor& x) {
    TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kHalf,
                "the CUDA kernels take float32 or float16 tensors, got ", x.scalar_type());
    return x.scalar_type() == torch::kHalf ? AFV_FLOAT16 : AFV_FLOAT32;
}

void check_image(const Tensor& x) {
    TORCH_CHECK(x.is_cuda(), "x must be a CUDA tensor");
    TORCH_CHECK(x.dim() == 4, "x must have shape [batch, channels, height, width]");
    for (int i = 0; i < 4; ++i)
        TORCH_CHECK(x.size(i) < (1 << 28), "x is too large for the kernel: ", x.sizes());
    TORCH_CHECK(x.size(0) * x.size(1) < INT_MAX, "x has too many images for the kernel: ", x.sizes());
}

void check_factor(int64_t v, const char* name) {
    TORCH_CHECK(v >= 1 && v <= 64, name, " must be in [1, 64], got ", v);
}

// Filter as contiguous float32 on x's device; fills taps (x, y) and whether it is 2-D.
const float* filter_ptr(const OptTensor& f, const Tensor& x, Tensor& holder, int* taps_x, int* taps_y, int* is_2d) {
    if (!f.has_value() || !f->defined()) {
        *taps_x = *taps_y = *is_2d = 1;
        return nullptr;
    }
    TORCH_CHECK(f->dim() == 1 || f->dim() == 2, "filters must be 1-D or 2-D");
    TORCH_CHECK(f->numel() >= 1 && f->numel() <= 65536, "filter size out of range");
    holder = f->to(x.device(), torch::kFloat).contiguous();
    *taps_x = (int)holder.size(-1);
    *taps_y = (int)holder.size(0);
    *is_2d = holder.dim() == 2;
    return holder.data_ptr<float>();
}

const void* bias_ptr(const OptTensor& b, const Tensor& x, int64_t size, Tensor& holder) {
    if (!b.has_value() || !b->defined())
        return nullptr;
    TORCH_CHECK(b->dim() == 1 && b->size(0) == size, "b must have shape [", size, "]");
    holder = b->to(x.device(), x.scalar_type()).contiguous();
    return holder.data_ptr();
}

void copy_strides(long long* dst, const Tensor& t) {
    for (int i = 0; i < 4; ++i)
        dst[i] = t.stride(i);
}

std::tuple<Tensor, Tensor> filtered_lrelu_forward(Tensor x, OptTensor fu, OptTensor fd, OptTensor b, int64_t up,
                                                  int64_t down, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0,
                                                  int64_t pad_y1, bool flip, double gain, double slope, double clamp,
                                                  bool write_mask) {
    check_image(x);
    check_factor(up, "up");
    check_factor(down, "down");
    const c10::cuda::OptionalCUDAGuard guard(x.device());
    AfvFlreluParams p = {};
    Tensor fu_holder, fd_holder, b_holder;
    p.dtype = dtype_code(x);
    p.fu = filter_ptr(fu, x, fu_holder, &p.fu_w, &p.fu_h, &p.fu_2d);
    p.fd = filter_ptr(fd, x, fd_holder, &p.fd_w, &p.fd_h, &p.fd_2d);
    p.b = bias_ptr(b, x, x.size(1), b_holder);
    p.batch = (int)x.size(0);
    p.channels = (int)x.size(1);
    p.in_h = (int)x.size(2);
    p.in_w = (int)x.size(3);
    p.up = (int)up;
    p.down = (int)down;
    p.pad_x0 = (int)pad_x0;
    p.pad_y0 = (int)pad_y0;
    p.flip = flip;
    p.gain = (float)gain;
    p.slope = (float)slope;
    p.clamp = (float)clamp;
    TORCH_CHECK(afv_flrelu_setup(&p, (int)pad_x1, (int)pad_y1), "filtered_lrelu: empty output");
    Tensor y = torch::empty({x.size(0), x.size(1), p.out_h, p.out_w}, x.options());
    Tensor mask;
    if (write_mask)
        mask = torch::empty({x.size(0), x.size(1), p.mid_h, p.mask_row_bytes}, x.options().dtype(torch::kUInt8));
    else
        mask = torch::empty({0}, x.options().dtype(torch::kUInt8));
    if (y.numel() == 0)
        return {y, mask};
    p.x = x.data_ptr();
    p.y = y.data_ptr();
    p.mask = write_mask ? mask.data_ptr<uint8_t>() : nullptr;
    copy_strides(p.x_stride, x);
    copy_strides(p.y_stride, y);
    const char* err = afv_filtered_lrelu_forward(p, current_stream(x));
    TORCH_CHECK(err == nullptr, "filtered_lrelu CUDA kernel: ", err);
    return {y, mask};
}

Tensor filtered_lrelu_mask_grad(Tensor g, Tensor mask, double gain, double slope) {
    TORCH_CHECK(g.is_cuda() && g.dim() == 4 && g.scalar_type() == torch::kFloat, "g must be a 4-D float32 CUDA tensor");
    TORCH_CHECK(mask.is_cuda() && mask.scalar_type() == torch::kUInt8 && mask.dim() == 4 && mask.is_contiguous(),
                "mask must be a contiguous uint8 CUDA tensor");
    TORCH_CHECK(mask.size(0) == g.size(0) && mask.size(1) == g.size(1) && mask.size(2) == g.size(2) &&
                mask.size(3) == (g.size(3) + 3) / 4, "mask does not match g");
    const c10::cuda::OptionalCUDAGuard guard(g.device());
    g = g.contiguous();
    Tensor out = torch::empty_like(g);
    if (g.numel() == 0)
        return out;
    AfvFlreluGradParams p = {};
    p.g = g.data_ptr<float>();
    p.out = out.data_ptr<float>();
    p.mask = mask.data_ptr<uint8_t>();
    p.rows = g.size(0) * g.size(1) * g.size(2);
    p.mid_w = (int)g.size(3);
    p.mask_row_bytes = (int)mask.size(3);
    p.gain = (float)gain;
    p.slope = (float)slope;
    const char* err = afv_filtered_lrelu_mask_grad(p, current_stream(g));
    TORCH_CHECK(err == nullptr, "filtered_lrelu CUDA kernel: ", err);
    return out;
}

Tensor upfirdn2d(Tensor x, OptTensor f, int64_t up_x, int64_t up_y, int64_t down_x, int64_t down_y, int64_t pad_x0,
                 int64_t pad_x1, int64_t pad_y0, int64_t pad_y1, bool flip, double gain) {
    check_image(x);
    check_factor(up_x, "up");
    check_factor(up_y, "up");
    check_factor(down_x, "down");
    check_factor(down_y, "down");
    const c10::cuda::OptionalCUDAGuard guard(x.device());
    AfvUpfirdnParams p = {};
    Tensor f_holder;
    p.dtype = dtype_code(x);
    p.f = filter_ptr(f, x, f_holder, &p.f_w, &p.f_h, &p.f_2d);
    p.batch = (int)x.size(0);
    p.channels = (int)x.size(1);
    p.in_h = (int)x.size(2);
    p.in_w = (int)x.size(3);
    p.up_x = (int)up_x;
    p.up_y = (int)up_y;
    p.down_x = (int)down_x;
    p.down_y = (int)down_y;
    p.pad_x0 = (int)pad_x0;
    p.pad_y0 = (int)pad_y0;
    p.flip = flip;
    p.gain = (float)gain;
    TORCH_CHECK(afv_upfirdn_setup(&p, (int)pad_x1, (int)pad_y1), "upfirdn2d: empty output");
    Tensor y = torch::empty({x.size(0), x.size(1), p.out_h, p.out_w}, x.options());
    if (y.numel() == 0)
        return y;
    p.x = x.data_ptr();
    p.y = y.data_ptr();
    copy_strides(p.x_stride, x);
    copy_strides(p.y_stride, y);
    const char* err = afv_upfirdn2d(p, current_stream(x));
    TORCH_CHECK(err == nullptr, "upfirdn2d CUDA kernel: ", err);
    return y;
}

AfvBiasActParams bias_act_params(const Tensor& x, const OptTensor& b, int64_t dim, int64_t act, double alpha,
                                 double gain, double clamp, Tensor& b_holder) {
    TORCH_CHECK(x.is_cuda() && x.is_contiguous(), "x must be a contiguous CUDA tensor");
    TORCH_CHECK(act >= AFV_ACT_LINEAR && act <= AFV_ACT_SWISH, "unknown activation id ", act);
    AfvBiasActParams p = {};
    p.dtype = dtype_code(x);
    p.numel = x.numel();
    p.channels = 1;
    p.inner = 1;
    if (b.has_value() && b->defined()) {
        TORCH_CHECK(dim >= 0 && dim < x.dim(), "dim out of range");
        p.channels = (int)x.size(dim);
        for (int64_t i = dim + 1; i < x.dim(); ++i)
            p.inner *= x.size(i);
        p.b = bias_ptr(b, x, x.size(dim), b_holder);
    }
    p.act = (int)act;
    p.alpha = (float)alpha;
    p.gain = (float)gain;
    p.clamp = (float)clamp;
    return p;
}

Tensor bias_act_forward(Tensor x, OptTensor b, int64_t dim, int64_t act, double alpha, double gain, double clamp) {
    const c10::cuda::OptionalCUDAGuard guard(x.device());
    Tensor b_holder;
    AfvBiasActParams p = bias_act_params(x, b, dim, act, alpha, gain, clamp, b_holder);
    Tensor y = torch::empty_like(x);
    if (x.numel() == 0)
        return y;
    p.x = x.data_ptr();
    p.out = y.data_ptr();
    const char* err = afv_bias_act_forward(p, current_stream(x));
    TORCH_CHECK(err == nullptr, "bias_act CUDA kernel: ", err);
    return y;
}

Tensor bias_act_backward(Tensor gy, Tensor x, OptTensor b, int64_t dim, int64_t act, double alpha, double gain,
                         double clamp) {
    const c10::cuda::OptionalCUDAGuard guard(x.device());
    Tensor b_holder;
    AfvBiasActParams p = bias_act_params(x, b, dim, act, alpha, gain, clamp, b_holder);
    TORCH_CHECK(gy.sizes() == x.sizes() && gy.scalar_type() == x.scalar_type() && gy.is_contiguous() &&
                gy.device() == x.device(), "gy must match x");
    Tensor gx = torch::empty_like(x);
    if (x.numel() == 0)
        return gx;
    p.x = x.data_ptr();
    p.gy = gy.data_ptr();
    p.out = gx.data_ptr();
    const char* err = afv_bias_act_backward(p, current_stream(x));
    TORCH_CHECK(err == nullptr, "bias_act CUDA kernel: ", err);
    return gx;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "alias-free-viz CUDA ops: filtered_lrelu, upfirdn2d, bias_act";
    m.def("filtered_lrelu_forward", &filtered_lrelu_forward);
    m.def("filtered_lrelu_mask_grad", &filtered_lrelu_mask_grad);
    m.def("upfirdn2d", &upfirdn2d);
    m.def("bias_act_forward", &bias_act_forward);
    m.def("bias_act_backward", &bias_act_backward);
}
