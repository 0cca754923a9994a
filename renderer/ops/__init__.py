"""Custom ops of the generators: bias_act, upfirdn2d, filtered_lrelu.

Each op is a public function with an `impl` argument ('auto', 'ref', 'cuda').
'auto' runs the CUDA kernels (renderer/ops/cuda/, built on first use, see
cuda_build) for CUDA tensors and the pure-PyTorch reference path otherwise.
Importing this package never compiles anything; `implementation_status()`
tells which implementation each op uses and why.
"""

from renderer.ops.bias_act import bias_act
from renderer.ops.cuda_build import CudaFallbackWarning, CudaOpsUnavailable, implementation_status
from renderer.ops.filtered_lrelu import filtered_lrelu
from renderer.ops.upfirdn2d import upfirdn2d, upsample2d

__all__ = ['CudaFallbackWarning', 'CudaOpsUnavailable', 'bias_act', 'filtered_lrelu', 'implementation_status',
           'upfirdn2d', 'upsample2d']
