"""StyleGAN2 generator, config F with the "skip" architecture (docs/generator.md section 5).

Module and tensor names match the published checkpoints
(`synthesis.b64.conv0.weight`, `synthesis.b4.const`, ...).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from renderer.networks.layers import FullyConnectedLayer, GeneratorBase, full_precision
from renderer.networks.modulation import modulated_conv
from renderer.networks.precision import layer_dtype, network_precision
from renderer.ops import bias_act, upfirdn2d, upsample2d
from renderer.options import NOISE_MODES
from renderer.signal.filters import setup_resample_filter


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     up: int = 1, padding: int = 0, resample_filter: Optional[torch.Tensor] = None) -> torch.Tensor:
    """StyleGAN2 modulated convolution; up=2 is a stride-2 transposed conv followed by the FIR.

    In float16 the weights and styles are first rescaled by their infinity norms
    (demodulation cancels the scale) so that the products cannot overflow.
    """
    if x.dtype == torch.float16 and demodulate:
        in_channels, kh, kw = weight.shape[1:]
        weight = weight * (1 / np.sqrt(in_channels * kh * kw)
                           / weight.norm(float('inf'), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float('inf'), dim=1, keepdim=True)
    if up == 1:
        return modulated_conv(x, weight, styles, demodulate, padding=padding)
    # Transposed convolution with the modulated kernel, then the FIR at gain up**2; the
    # padding keeps the output at exactly `up` times the input size.
    x = modulated_conv(x, weight, styles, demodulate, transpose=True, stride=up)
    kh, kw = weight.shape[2:]
    taps = resample_filter.shape[-1]
    px0 = padding + (taps + up - 1) // 2 - (kw - 1)
    px1 = padding + (taps - up) // 2 - (kw - up)
    py0 = padding + (taps + up - 1) // 2 - (kh - 1)
    py1 = padding + (taps - up) // 2 - (kh - up)
    return upfirdn2d(x, resample_filter, padding=[px0, px1, py0, py1], gain=up ** 2)


class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 convolution (optionally upsampling x2), noise, bias, leaky ReLU."""

    def __init__(self,
                 in_channels: int,                # Number of input channels.
                 out_channels: int,               # Number of output channels.
                 w_dim: int,                      # Intermediate latent (w) dimensionality.
                 resolution: int,                 # Output resolution.
                 kernel_size: int = 3,            # Convolution kernel size.
                 up: int = 1,                     # Upsampling factor (1 or 2).
                 use_noise: bool = True,          # Enable noise input?
                 activation: str = 'lrelu',       # Activation function.
                 resample_filter: Sequence[float] = (1, 3, 3, 1),  # Low-pass filter taps for upsampling.
                 conv_clamp: Optional[float] = None,  # Clamp the output to +-X, None = no clamping.
                 channels_last: bool = False,     # Memory-format hint of the training code (ignored).
                 ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', setup_resample_filter(resample_filter))
        self.padding = kernel_size // 2
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer('noise_const', torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = 'const') -> torch.Tensor:
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight, styles, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter)
        if self.use_noise and noise_mode != 'none':
            if noise_mode == 'random':
                noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
            else:
                noise = self.noise_const
            x = x + (noise * self.noise_strength).to(x.dtype)
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return (f'in={self.in_channels}, out={self.out_channels}, resolution={self.resolution}, '
                f'up={self.up}, activation={self.activation}')


class ToRGBLayer(torch.nn.Module):
    """1x1 modulated convolution without demodulation, plus bias."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: Optional[float] = None, channels_last: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size ** 2))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(torch.nn.Module):
    """One resolution: [conv0 (up x2)], conv1, torgb; the RGB skip image is upsampled and summed."""

    def __init__(self,
                 in_channels: int,                # Number of input channels, 0 = first block.
                 out_channels: int,               # Number of output channels.
                 w_dim: int,                      # Intermediate latent (w) dimensionality.
                 resolution: int,                 # Resolution of this block.
                 img_channels: int,               # Number of output colour channels.
                 is_last: bool,                   # Is this the last block?
                 architecture: str = 'skip',      # Only 'skip' (the published config F) is supported.
                 resample_filter: Sequence[float] = (1, 3, 3, 1),  # Low-pass filter taps.
                 conv_clamp: Optional[float] = 256,  # Clamp the output of convolution layers to +-X.
                 use_fp16: bool = False,          # Use FP16 for this block (CUDA only)?
                 fp16_channels_last: bool = False,  # Memory-format hint of the training code (ignored).
                 fused_modconv_default=True,      # Training-code option; the result is the same either way.
                 **layer_kwargs,                  # Arguments for SynthesisLayer.
                 ):
        super().__init__()
        if architecture != 'skip':
            raise ValueError(f"architecture {architecture!r} is not supported; StyleGAN2 generators use 'skip'")
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.register_buffer('resample_filter', setup_resample_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs)
        self.num_conv += 1
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
        self.num_torgb += 1

    def forward(self, x: Optional[torch.Tensor], img: Optional[torch.Tensor], ws: torch.Tensor,
                noise_mode: str = 'const', force_fp32: bool = False, precision: Optional[str] = None):
        """ws [N, num_conv + num_torgb, w_dim]; returns (features in the block's dtype, image in float32)."""
        w_iter = iter(ws.unbind(dim=1))
        precision = network_precision(precision, force_fp32)
        full = full_precision(self.conv1.weight)
        dtype = layer_dtype(precision, self.use_fp16, ws.device, full)
        rgb_dtype = layer_dtype(precision, self.use_fp16, ws.device, full, makes_image=True)
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            x = self.conv0(x.to(dtype), next(w_iter), noise_mode=noise_mode)
        x = self.conv1(x, next(w_iter), noise_mode=noise_mode)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x.to(rgb_dtype), next(w_iter)).to(full)
        img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(torch.nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, res, res]."""

    def __init__(self,
                 w_dim: int,                      # Intermediate latent (w) dimensionality.
                 img_resolution: int,             # Output image resolution (a power of two >= 4).
                 img_channels: int,               # Number of colour channels.
                 channel_base: int = 32768,       # Overall multiplier for the number of channels.
                 channel_max: int = 512,          # Maximum number of channels in any layer.
                 num_fp16_res: int = 4,           # Use FP16 for the N highest resolutions (CUDA only).
                 **block_kwargs,                  # Arguments for SynthesisBlock.
                 ):
        super().__init__()
        log2 = int(np.log2(img_resolution)) if img_resolution > 0 else 0
        if img_resolution < 4 or 2 ** log2 != img_resolution:
            raise ValueError(f'img_resolution must be a power of two >= 4, got {img_resolution}')
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=(res == img_resolution),
                                   use_fp16=(res >= fp16_resolution), **block_kwargs)
            self.num_ws += block.num_conv
            if block.is_last:
                self.num_ws += block.num_torgb
            setattr(self, f'b{res}', block)

    def forward(self, ws: torch.Tensor, noise_mode: str = 'const', force_fp32: bool = False,
                precision: Optional[str] = None) -> torch.Tensor:
        """`precision`: 'fp32', 'bf16' or 'fp16' (None: 'fp16', the published mixed precision; force_fp32 wins)."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f'ws must have shape [batch, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}')
        if noise_mode not in NOISE_MODES:
            raise ValueError(f'noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}')
        ws = ws.to(full_precision(self.b4.const))
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            x, img = block(x, img, block_ws, noise_mode=noise_mode, force_fp32=force_fp32, precision=precision)
            w_idx += block.num_conv
        return img.contiguous()


class Generator(GeneratorBase):
    """StyleGAN2 generator: mapping + synthesis. Keyword arguments as in the published checkpoints."""

    architecture = 'stylegan2'
    synthesis_class = SynthesisNetwork
    default_mapping_layers = 8
