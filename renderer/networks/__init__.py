"""Generator networks: StyleGAN3 (configs T and R) and StyleGAN2 (config F)."""

from renderer.networks import stylegan2, stylegan3
from renderer.networks.capture import LayerRecord, capture_layers, capture_points

__all__ = ['stylegan2', 'stylegan3', 'LayerRecord', 'capture_layers', 'capture_points']
