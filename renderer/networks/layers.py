"""Building blocks shared by both generators: equalised-lr fully connected layer, mapping network.

Generator-spec section 1. Tensor names follow the published checkpoints.
"""

from __future__ import annotations

import copy
from typing import Optional, Sequence, Union

import numpy as np
import torch

from renderer.ops import bias_act


def full_precision(t: torch.Tensor) -> torch.dtype:
    """The dtype a network computes in outside its float16 layers: that of its weights `t` when they are
    float64 (a float64 copy of a network is a reference for the float32 one), else float32."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale x to unit mean square along `dim`."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(torch.nn.Module):
    """Linear layer with equalised learning rate: y = act(x @ (weight * lr_mul / sqrt(in)).T + bias * lr_mul).

    Stored `weight` [out, in] and `bias` [out] are the raw (unscaled) parameters.
    """

    def __init__(self,
                 in_features: int,                 # Number of input features.
                 out_features: int,                # Number of output features.
                 bias: bool = True,                # Learn a bias?
                 activation: str = 'linear',       # Activation name, see ops.bias_act.
                 lr_multiplier: float = 1,         # Learning-rate multiplier (also scales the forward pass).
                 weight_init: float = 1,           # Initial weight scale.
                 bias_init: Union[float, Sequence[float]] = 0,  # Initial bias, scalar or per output.
                 ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) * (weight_init / lr_multiplier))
        bias_init = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
        self.bias = torch.nn.Parameter(torch.from_numpy(bias_init / lr_multiplier)) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == 'linear' and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f'in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}'


class MappingNetwork(torch.nn.Module):
    """z (and label c) -> w, broadcast to num_ws copies; truncation towards w_avg."""

    def __init__(self,
                 z_dim: int,                          # Input latent (z) dimensionality, 0 = no latent.
                 c_dim: int,                          # Conditioning label (c) dimensionality, 0 = no label.
                 w_dim: int,                          # Intermediate latent (w) dimensionality.
                 num_ws: Optional[int],               # Number of ws to output, None = no broadcast.
                 num_layers: int = 8,                 # Number of fully connected layers (StyleGAN3: 2).
                 embed_features: Optional[int] = None,  # Label embedding size, None = w_dim.
                 layer_features: Optional[int] = None,  # Hidden layer width, None = w_dim.
                 activation: str = 'lrelu',           # Activation of the fully connected layers.
                 lr_multiplier: float = 0.01,         # Learning-rate multiplier of the mapping layers.
                 w_avg_beta: Optional[float] = 0.998,  # Decay of the w_avg running mean (training only).
                 ):
        super().__init__()
        if z_dim <= 0 and c_dim <= 0:
            raise ValueError('mapping network needs z_dim > 0 or c_dim > 0')
        if num_layers < 1:
            raise ValueError(f'mapping num_layers must be >= 1, got {num_layers}')
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f'fc{idx}', layer)
        if w_avg_beta is not None:  # As published: no w_avg (and no truncation) without a decay.
            self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z: Optional[torch.Tensor], c: Optional[torch.Tensor], truncation_psi: float = 1,
                truncation_cutoff: Optional[int] = None) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim] (or w [N, w_dim] if num_ws is None)."""
        x = None
        if self.z_dim > 0:
            _check_shape(z, 'z', self.z_dim)
            x = normalize_2nd_moment(z.to(full_precision(self.fc0.weight)))
        if self.c_dim > 0:
            _check_shape(c, 'c', self.c_dim)
            y = normalize_2nd_moment(self.embed(c.to(full_precision(self.embed.weight))))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f'fc{idx}')(x)
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if not hasattr(self, 'w_avg'):
                raise ValueError('truncation needs w_avg, which this mapping network does not track (w_avg_beta=None)')
            avg = self.w_avg.to(x.dtype)
            if self.num_ws is None or truncation_cutoff is None:
                x = avg.lerp(x, truncation_psi)
            else:
                x = torch.cat([avg.lerp(x[:, :truncation_cutoff], truncation_psi), x[:, truncation_cutoff:]], dim=1)
        return x


class GeneratorBase(torch.nn.Module):
    """Mapping + synthesis with the published constructor arguments; subclasses set the synthesis class."""

    architecture = ''                           # 'stylegan3' or 'stylegan2'.
    synthesis_class: type = torch.nn.Module     # The SynthesisNetwork of the architecture.
    default_mapping_layers = 8                  # Mapping depth when mapping_kwargs does not say.

    def __init__(self,
                 z_dim: int,                      # Input latent (z) dimensionality.
                 c_dim: int,                      # Conditioning label (c) dimensionality.
                 w_dim: int,                      # Intermediate latent (w) dimensionality.
                 img_resolution: int,             # Output resolution.
                 img_channels: int,               # Number of output colour channels.
                 mapping_kwargs: Optional[dict] = None,  # Arguments for MappingNetwork.
                 **synthesis_kwargs,              # Arguments for the synthesis network and its layers.
                 ):
        super().__init__()
        # Constructor arguments, as in the published checkpoints: enough to rebuild this network.
        self.init_kwargs = copy.deepcopy(dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                                              img_channels=img_channels, mapping_kwargs=dict(mapping_kwargs or {}),
                                              **synthesis_kwargs))
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = self.synthesis_class(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                              **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        mapping_kwargs = {'num_layers': self.default_mapping_layers, **(mapping_kwargs or {})}
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor], truncation_psi: float = 1,
                truncation_cutoff: Optional[int] = None, noise_mode: str = 'const',
                force_fp32: bool = False, precision: Optional[str] = None) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] -> image [N, img_channels, res, res]; the mapping is always float32,
        `precision` applies to the synthesis (renderer.networks.precision)."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, force_fp32=force_fp32, precision=precision)


def _check_shape(t: Optional[torch.Tensor], name: str, dim: int) -> None:
    if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[1] != dim:
        got = list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f'{name} must have shape [batch, {dim}], got {got}')
