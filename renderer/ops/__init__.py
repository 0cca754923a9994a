"""Custom ops of the generators: bias_act, upfirdn2d, filtered_lrelu.

Each op is a public function with an `impl` argument ('auto', 'ref', 'cuda').
Importing this package never compiles anything.
"""

from .bias_act import bias_act
from .filtered_lrelu import filtered_lrelu
from .upfirdn2d import upfirdn2d, upsample2d

__all__ = ['bias_act', 'filtered_lrelu', 'upfirdn2d', 'upsample2d']
