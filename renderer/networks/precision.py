"""Which dtype each part of a generator computes in (docs/generator.md section 6).

Precisions (renderer.options.PRECISIONS; 'auto' is resolved before synthesis, by
renderer.generation.choose_precision):
- 'fp32': everything in float32 (float64 for a float64 copy of a network).
- 'fp16': as the published networks: float16 in the layers they flag (`use_fp16`), on CUDA
  only; other devices have no fast float16 and compute those layers in full precision.
- 'bf16': bfloat16 in the flagged layers on any device, except the layer that makes the image
  (StyleGAN3's ToRGB, StyleGAN2's ToRGB layers), which stays in full precision. Convolutions
  and the polyphase filters then run in bfloat16 with float32 accumulation inside each op (oneDNN
  on the CPU); the mapping network, the Fourier input, the styles, the demodulation and the
  magnitude EMAs (folded into the weights) are float32, and weights are rounded only at the end.

On a CPU without native bfloat16 products the modulated convolutions of bfloat16 data run in float32 and
are rounded once (renderer.ops.common.convolution_dtype).

`force_fp32=True` always means 'fp32'; `precision=None` with `force_fp32=False` means 'fp16',
which keeps the published interface `G.synthesis(ws, force_fp32=...)` computing as before.
"""

from __future__ import annotations

from typing import Optional

import torch

from renderer.ops.common import convolution_dtype, cpu_bf16_instructions, cpu_has_native_bf16

NETWORK_PRECISIONS = ('fp32', 'bf16', 'fp16')   # What a synthesis network accepts ('auto' resolved).
REDUCED_DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}
DTYPE_NAMES = {torch.float16: 'float16', torch.bfloat16: 'bfloat16', torch.float32: 'float32',
               torch.float64: 'float64'}


def network_precision(precision: Optional[str], force_fp32: bool = False) -> str:
    """The precision a synthesis call computes in: 'fp32' when forced, 'fp16' (published) for None."""
    if force_fp32:
        return 'fp32'
    if precision is None:
        return 'fp16'
    if precision not in NETWORK_PRECISIONS:
        raise ValueError(f'precision must be one of {", ".join(NETWORK_PRECISIONS)} (resolve "auto" first), '
                         f'got {precision!r}')
    return precision


def layer_dtype(precision: str, flagged: bool, device: torch.device, full: torch.dtype,
                makes_image: bool = False) -> torch.dtype:
    """The dtype of one layer: `flagged` is the network's use_fp16 mark, `full` its full precision,
    `makes_image` true for the layers whose output is the RGB image (kept in full precision in bf16)."""
    if not flagged or precision == 'fp32':
        return full
    if precision == 'fp16':
        return torch.float16 if device.type == 'cuda' else full
    return full if makes_image else torch.bfloat16


def used_precision(G: torch.nn.Module, precision: str, device: torch.device) -> str:
    """What a synthesis of G in `precision` on `device` really computes in: 'fp16' without CUDA, or
    without a flagged layer, is 'fp32' (and so is 'bf16' without a flagged layer)."""
    precision = network_precision(precision)
    flagged = any(getattr(m, 'use_fp16', False) for m in G.synthesis.modules())
    if precision == 'fp32' or not flagged or (precision == 'fp16' and device.type != 'cuda'):
        return 'fp32'
    return precision


def unsupported_reason(precision: str, device: torch.device) -> Optional[str]:
    """Why `precision` cannot run on `device`, or None. fp16 needs CUDA; bf16 needs oneDNN's bf16
    support on the CPU or a CUDA device with bf16."""
    if precision == 'fp16' and device.type != 'cuda':
        return f'fp16 needs a CUDA device (this is {device.type}); use bf16 on a CPU'
    if precision == 'bf16':
        if device.type == 'cpu' and not cpu_supports_bf16():
            return 'this CPU has no bfloat16 support in oneDNN (it needs AVX-512 or newer)'
        if device.type == 'cuda' and not torch.cuda.is_bf16_supported():
            return f'{torch.cuda.get_device_name(device)} has no bfloat16 support'
        if device.type not in ('cpu', 'cuda'):
            return f'bf16 is not supported on {device.type}'
    return None


def cpu_supports_bf16() -> bool:
    """oneDNN runs bfloat16 convolutions on this CPU (natively or emulated with AVX-512)."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def dtype_name(dtype: torch.dtype) -> str:
    return DTYPE_NAMES.get(dtype, str(dtype).replace('torch.', ''))


__all__ = ['NETWORK_PRECISIONS', 'convolution_dtype', 'cpu_bf16_instructions', 'cpu_has_native_bf16',
           'cpu_supports_bf16', 'dtype_name', 'layer_dtype', 'network_precision', 'unsupported_reason',
           'used_precision']
