"""StyleGAN3 generator, configs T and R ("Alias-Free Generative Adversarial Networks").

Generator-spec section 2; paper appendix F for the layer schedule. Module
and tensor names match the published checkpoints
(`synthesis.L{idx}_{size}_{channels}.weight`, `synthesis.input.freqs`, ...).
Frequencies are in cycles per image unit, where the output image spans 1 unit;
sampling rates are in samples per unit.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from renderer.networks.layers import FullyConnectedLayer, GeneratorBase, full_precision
from renderer.networks.modulation import modulated_conv
from renderer.networks.precision import layer_dtype, network_precision
from renderer.ops import filtered_lrelu
from renderer.signal.filters import design_lowpass_filter


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, padding: int,
                     demodulate: bool, input_gain: Optional[torch.Tensor]) -> torch.Tensor:
    """StyleGAN3 modulated convolution: weights and styles are pre-normalised when demodulating."""
    if demodulate:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    return modulated_conv(x, weight, styles, demodulate, input_gain=input_gain, padding=padding)


class SynthesisInput(torch.nn.Module):
    """Fourier features: sin(2*pi*(grid . freqs' + phases')) * amplitude, then channel mixing.

    `transform` [3, 3] maps output-image coordinates to input coordinates (the
    inverse of the user-specified transform of the output image).
    """

    def __init__(self,
                 w_dim: int,              # Intermediate latent (w) dimensionality.
                 channels: int,           # Number of output channels.
                 size: int,               # Output spatial size (int or [width, height]).
                 sampling_rate: float,    # Output sampling rate.
                 bandwidth: float,        # Output bandwidth (the cutoff of layer 0).
                 ):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = np.broadcast_to(np.asarray(size), [2])
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth
        # Random directions, radius distributed to fill a disc of radius `bandwidth`.
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        phases = torch.rand([channels]) - 0.5
        self.weight = torch.nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer('transform', torch.eye(3, 3))
        self.register_buffer('freqs', freqs)
        self.register_buffer('phases', phases)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """w [N, w_dim] -> features [N, channels, height, width] (float32; float64 for a float64 network)."""
        batch_size = w.shape[0]
        # Per-sample rotation and translation from the affine layer.
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        m_r = torch.eye(3, device=w.device, dtype=t.dtype).unsqueeze(0).repeat([batch_size, 1, 1])
        m_r[:, 0, 0] = t[:, 0]
        m_r[:, 0, 1] = -t[:, 1]
        m_r[:, 1, 0] = t[:, 1]
        m_r[:, 1, 1] = t[:, 0]
        m_t = torch.eye(3, device=w.device, dtype=t.dtype).unsqueeze(0).repeat([batch_size, 1, 1])
        m_t[:, 0, 2] = -t[:, 2]
        m_t[:, 1, 2] = -t[:, 3]
        transforms = m_r @ m_t @ self.transform.unsqueeze(0).to(t.dtype)

        # Transform the frequencies and phases.
        freqs = self.freqs.unsqueeze(0).to(t.dtype)
        phases = self.phases.unsqueeze(0).to(t.dtype) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth)
                      / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        # Sample the features on the pixel-centre grid: (i + 0.5 - size/2) / sampling_rate.
        width, height = int(self.size[0]), int(self.size[1])
        gx = (torch.arange(width, device=w.device, dtype=t.dtype) + (0.5 - width / 2)) / self.sampling_rate
        gy = (torch.arange(height, device=w.device, dtype=t.dtype) + (0.5 - height / 2)) / self.sampling_rate
        grid = torch.stack(torch.meshgrid(gx, gy, indexing='xy'), dim=-1)  # [H, W, 2], (x, y)
        x = grid.reshape(1, height * width, 2) @ freqs.transpose(1, 2)  # [N, H*W, C]
        x = x + phases.unsqueeze(1)
        x = torch.sin(x * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1)

        # Mix channels.
        weight = self.weight / np.sqrt(self.channels)
        x = x @ weight.t()
        return x.reshape(batch_size, height, width, self.channels).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (f'w_dim={self.w_dim}, channels={self.channels}, size={list(self.size)}, '
                f'sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}')


class SynthesisLayer(torch.nn.Module):
    """Modulated convolution followed by filtered leaky ReLU (or the linear ToRGB layer)."""

    def __init__(self,
                 w_dim: int,                      # Intermediate latent (w) dimensionality.
                 is_torgb: bool,                  # Is this the final ToRGB layer?
                 is_critically_sampled: bool,     # Does this layer use critical sampling?
                 use_fp16: bool,                  # Does this layer use FP16 (on CUDA)?
                 in_channels: int,                # Number of input channels.
                 out_channels: int,               # Number of output channels.
                 in_size: int,                    # Input spatial size: int or [width, height].
                 out_size: int,                   # Output spatial size: int or [width, height].
                 in_sampling_rate: int,           # Input sampling rate.
                 out_sampling_rate: int,          # Output sampling rate.
                 in_cutoff: float,                # Input cutoff frequency.
                 out_cutoff: float,               # Output cutoff frequency.
                 in_half_width: float,            # Input transition band half-width.
                 out_half_width: float,           # Output transition band half-width.
                 conv_kernel: int = 3,            # Convolution kernel size (ignored for ToRGB: 1).
                 filter_size: int = 6,            # Low-pass filter taps per sampling-rate ratio.
                 lrelu_upsampling: int = 2,       # Relative sampling rate of the leaky ReLU.
                 use_radial_filters: bool = False,  # Radially symmetric down filter (config R)?
                 conv_clamp: Optional[float] = 256,  # Clamp the output to +-X, None = no clamping.
                 magnitude_ema_beta: float = 0.999,  # Decay of the input magnitude EMA (training only).
                 ):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = use_fp16
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        # Parameters and buffers.
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer('magnitude_ema', torch.ones([]))

        # Upsampling filter.
        self.up_factor = _integer_ratio(self.tmp_sampling_rate, in_sampling_rate, 'up factor')
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.register_buffer('up_filter', design_lowpass_filter(
            numtaps=self.up_taps, cutoff=in_cutoff, width=in_half_width * 2, fs=self.tmp_sampling_rate))

        # Downsampling filter.
        self.down_factor = _integer_ratio(self.tmp_sampling_rate, out_sampling_rate, 'down factor')
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer('down_filter', design_lowpass_filter(
            numtaps=self.down_taps, cutoff=out_cutoff, width=out_half_width * 2, fs=self.tmp_sampling_rate,
            radial=self.down_radial))

        # Padding at the upsampled rate so that the output has exactly out_size samples.
        pad_total = (self.out_size - 1) * self.down_factor + 1
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor
        pad_total += self.up_taps + self.down_taps - 2
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]

    def forward(self, x: torch.Tensor, w: torch.Tensor, force_fp32: bool = False,
                precision: Optional[str] = None) -> torch.Tensor:
        """x [N, in_channels, in_h, in_w], w [N, w_dim] -> [N, out_channels, out_h, out_w] in the layer's dtype
        (renderer.networks.precision: float16 / bfloat16 in flagged layers, else float32)."""
        expected = [self.in_channels, int(self.in_size[1]), int(self.in_size[0])]
        if x.ndim != 4 or list(x.shape[1:]) != expected:
            raise ValueError(f'{type(self).__name__}: expected input [N, {", ".join(map(str, expected))}], '
                             f'got {list(x.shape)}')
        input_gain = self.magnitude_ema.rsqrt()
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * (self.conv_kernel ** 2)))
        dtype = layer_dtype(network_precision(precision, force_fp32), self.use_fp16, x.device,
                            full_precision(self.weight), makes_image=self.is_torgb)
        x = modulated_conv2d(x.to(dtype), self.weight, styles, padding=self.conv_kernel - 1,
                             demodulate=not self.is_torgb, input_gain=input_gain)
        return filtered_lrelu(x, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(x.dtype),
                              up=self.up_factor, down=self.down_factor, padding=self.padding,
                              gain=1 if self.is_torgb else np.sqrt(2), slope=1 if self.is_torgb else 0.2,
                              clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return (f'in={self.in_channels}x{self.in_size[0]}@{self.in_sampling_rate:g}, '
                f'out={self.out_channels}x{self.out_size[0]}@{self.out_sampling_rate:g}, '
                f'cutoff={self.out_cutoff:g}, up={self.up_factor}, down={self.down_factor}, '
                f'torgb={self.is_torgb}, critical={self.is_critically_sampled}, fp16={self.use_fp16}')


def _integer_ratio(numerator: float, denominator: float, name: str) -> int:
    ratio = int(np.rint(numerator / denominator))
    if ratio * denominator != numerator:
        raise ValueError(f'{name} must be an integer, got {numerator} / {denominator}')
    return ratio


def layer_schedule(img_resolution: int, img_channels: int, channel_base: int, channel_max: int,
                   num_layers: int, num_critical: int, first_cutoff: float, first_stopband: float,
                   last_stopband_rel: float, margin_size: int) -> dict[str, np.ndarray]:
    """Per-layer cutoff, stopband, sampling rate, half width, size and channels (L+1 layers)."""
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return dict(cutoffs=cutoffs, stopbands=stopbands, sampling_rates=sampling_rates,
                half_widths=half_widths, sizes=sizes, channels=channels)


class SynthesisNetwork(torch.nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, res, res] in about [-1, 1]."""

    def __init__(self,
                 w_dim: int,                       # Intermediate latent (w) dimensionality.
                 img_resolution: int,              # Output image resolution.
                 img_channels: int,                # Number of colour channels.
                 channel_base: int = 32768,        # Overall multiplier for the number of channels.
                 channel_max: int = 512,           # Maximum number of channels in any layer.
                 num_layers: int = 14,             # Number of layers, excluding Fourier features and ToRGB.
                 num_critical: int = 2,            # Number of critically sampled layers at the end.
                 first_cutoff: float = 2,          # Cutoff frequency of the first layer (f_c).
                 first_stopband: float = 2 ** 2.1,  # Minimum stopband of the first layer (f_t).
                 last_stopband_rel: float = 2 ** 0.3,  # Minimum stopband of the last layer, relative to its cutoff.
                 margin_size: int = 10,            # Samples added beyond the image on each side.
                 output_scale: float = 0.25,       # Scale factor of the output image.
                 num_fp16_res: int = 4,            # Use FP16 for the N highest resolutions (CUDA only).
                 **layer_kwargs,                   # Arguments for SynthesisLayer.
                 ):
        super().__init__()
        if num_layers - num_critical < 1:
            raise ValueError(f'num_layers ({num_layers}) must exceed num_critical ({num_critical})')
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res
        s = layer_schedule(img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical,
                           first_cutoff, first_stopband, last_stopband_rel, margin_size)
        self.input = SynthesisInput(w_dim=w_dim, channels=int(s['channels'][0]), size=int(s['sizes'][0]),
                                    sampling_rate=s['sampling_rates'][0], bandwidth=s['cutoffs'][0])
        self.layer_names = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim, is_torgb=(idx == num_layers), is_critically_sampled=(idx >= num_layers - num_critical),
                use_fp16=bool(s['sampling_rates'][idx] * (2 ** num_fp16_res) > img_resolution),
                in_channels=int(s['channels'][prev]), out_channels=int(s['channels'][idx]),
                in_size=int(s['sizes'][prev]), out_size=int(s['sizes'][idx]),
                in_sampling_rate=int(s['sampling_rates'][prev]), out_sampling_rate=int(s['sampling_rates'][idx]),
                in_cutoff=s['cutoffs'][prev], out_cutoff=s['cutoffs'][idx],
                in_half_width=s['half_widths'][prev], out_half_width=s['half_widths'][idx],
                **layer_kwargs)
            name = f'L{idx}_{layer.out_size[0]}_{layer.out_channels}'
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(self, ws: torch.Tensor, noise_mode: str = 'const', force_fp32: bool = False,
                precision: Optional[str] = None) -> torch.Tensor:
        """`noise_mode` is accepted for interface parity; StyleGAN3 has no noise inputs. `precision`:
        'fp32', 'bf16' or 'fp16' (None: 'fp16', the published mixed precision; force_fp32 wins)."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f'ws must have shape [batch, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}')
        full = full_precision(self.input.weight)
        ws = ws.to(full).unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, force_fp32=force_fp32, precision=precision)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(full).contiguous()


class Generator(GeneratorBase):
    """StyleGAN3 generator: mapping + synthesis. Keyword arguments as in the published checkpoints."""

    architecture = 'stylegan3'
    synthesis_class = SynthesisNetwork
    default_mapping_layers = 2
