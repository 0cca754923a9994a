"""Composing views of two networks (A, B) into one picture: side by side, split, difference.

Views are float tensors [C, H, W] in [-1, 1] (C = 1 or 3); outputs likewise.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from renderer.errors import RequestError
from renderer.media.pictures import as_rgb

GAP_VALUE = 0.0   # Mid-grey between panels and around shorter ones.
TILE_FILL = -1.0  # Black: empty grid tiles and the gaps between them.


def resize_like(view: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize of [C, h, w] to [C, height, width] (identity if the size already matches)."""
    if view.shape[1:] == (height, width):
        return view
    return F.interpolate(view[None].float(), size=(height, width), mode='bilinear', align_corners=False,
                         antialias=True)[0]


def side_by_side(images: Sequence[torch.Tensor], gap: int = 4, vertical: bool = False,
                 fill: float = GAP_VALUE) -> torch.Tensor:
    """Compose [C, H, W] images (values in [-1, 1]) left to right (or top to bottom) with `gap` pixels between.

    Shorter (narrower, when vertical) images are centred and padded with `fill`
    (default mid-grey), as are the gaps. Grey [1, H, W] images are replicated to RGB when
    mixed with RGB ones. Output float32 [C, H', W'] on the first image's device.
    """
    if len(images) == 0:
        raise RequestError('side_by_side needs at least one image')
    if gap < 0:
        raise RequestError(f'gap must be >= 0, got {gap}')
    if any(img.ndim != 3 for img in images):
        raise RequestError(f'side_by_side takes [C, H, W] images, got shapes {[list(i.shape) for i in images]}')
    channels = max(img.shape[0] for img in images)
    device = images[0].device
    if vertical:
        images = [img.transpose(1, 2) for img in images]
    height = max(img.shape[1] for img in images)
    width = sum(img.shape[2] for img in images) + gap * (len(images) - 1)
    out = torch.full([channels, height, width], float(fill), dtype=torch.float32, device=device)
    x = 0
    for img in images:
        if img.shape[0] != channels and img.shape[0] != 1:
            raise RequestError(f'cannot combine images with {img.shape[0]} and {channels} channels')
        h, w = img.shape[1:]
        y = (height - h) // 2
        out[:, y:y + h, x:x + w] = img.to(device=device, dtype=torch.float32)
        x += w + gap
    return out.transpose(1, 2) if vertical else out


def centre_on(view: torch.Tensor, height: int, width: int, fill: float = GAP_VALUE) -> torch.Tensor:
    """[C, h, w] at its own pixels in the middle of a [C, height, width] canvas of `fill` (cropped if larger)."""
    out = torch.full([view.shape[0], height, width], float(fill), dtype=torch.float32, device=view.device)
    h, w = min(view.shape[1], height), min(view.shape[2], width)
    sy, sx = (view.shape[1] - h) // 2, (view.shape[2] - w) // 2      # Crop from the middle of the view,
    oy, ox = (height - h) // 2, (width - w) // 2                      # and place it in the middle of the canvas.
    out[:, oy:oy + h, ox:ox + w] = view[:, sy:sy + h, sx:sx + w].float()
    return out


def match_size(view: torch.Tensor, height: int, width: int, how: str = 'resize') -> torch.Tensor:
    """view [C, h, w] on a [C, height, width] grid: 'resize' (bilinear, antialiased) or 'pad' (centre_on)."""
    if how == 'resize':
        return resize_like(view, height, width)
    if how == 'pad':
        return centre_on(view, height, width)
    raise RequestError(f"size matching must be 'resize' or 'pad', got {how!r}")


def split_view(a: torch.Tensor, b: torch.Tensor, split_pos: float, match: str = 'resize') -> torch.Tensor:
    """A left of column round(split_pos * W), B right of it (B matched to A's size), with a 1-px white line."""
    if not 0 <= split_pos <= 1:
        raise RequestError(f'split position must lie in [0, 1], got {split_pos}')
    a, b = as_rgb(a.float()), as_rgb(b.float())
    b = match_size(b, a.shape[1], a.shape[2], match)
    column = round(split_pos * a.shape[2])
    out = torch.cat([a[:, :, :column], b[:, :, column:]], dim=2)
    if 0 < column < a.shape[2]:
        out[:, :, column] = 1.0
    return out


def difference_view(a: torch.Tensor, b: torch.Tensor, gain: float = 1.0, match: str = 'resize') -> torch.Tensor:
    """|A - B| * gain shown from black (equal) to white (differ by 2 / gain); B matched to A's size."""
    if not gain >= 0:
        raise RequestError(f'difference gain must be >= 0, got {gain}')
    a, b = as_rgb(a.float()), as_rgb(b.float())
    b = match_size(b, a.shape[1], a.shape[2], match)
    return ((a - b).abs() * gain - 1).clamp(-1, 1)


def tile(views: Sequence[torch.Tensor], columns: int, gap: int = 0, fill: float = TILE_FILL) -> torch.Tensor:
    """Views of one size in a grid, row-major (view i at row i // columns, column i % columns)."""
    if not views or columns < 1:
        raise RequestError(f'tile needs at least one view and one column, got {len(views)} and {columns}')
    blank = torch.full_like(views[0], fill)
    views = list(views) + [blank] * (-len(views) % columns)
    rows = [side_by_side(views[i:i + columns], gap, fill=fill) for i in range(0, len(views), columns)]
    return side_by_side(rows, gap, vertical=True, fill=fill)
