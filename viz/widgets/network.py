"""Network chooser: path/URL box, recent list, folder browser, published pickles, load errors with Retry."""

from __future__ import annotations

import glob
import os
from typing import Callable

from imgui_bundle import imgui

from gui_utils import layout

_NGC = 'https://api.ngc.nvidia.com/v2/models/nvidia/research/'
# Published networks, names only: choosing one fills the box; nothing is fetched until Open.
PUBLISHED_URLS = [_NGC + 'stylegan3/versions/1/files/' + name for name in (
    'stylegan3-t-ffhq-1024x1024.pkl', 'stylegan3-t-ffhqu-1024x1024.pkl', 'stylegan3-t-ffhqu-256x256.pkl',
    'stylegan3-t-metfaces-1024x1024.pkl', 'stylegan3-t-metfacesu-1024x1024.pkl', 'stylegan3-t-afhqv2-512x512.pkl',
    'stylegan3-r-ffhq-1024x1024.pkl', 'stylegan3-r-ffhqu-1024x1024.pkl', 'stylegan3-r-ffhqu-256x256.pkl',
    'stylegan3-r-metfaces-1024x1024.pkl', 'stylegan3-r-metfacesu-1024x1024.pkl', 'stylegan3-r-afhqv2-512x512.pkl',
)] + [_NGC + 'stylegan2/versions/1/files/' + name for name in (
    'stylegan2-ffhq-1024x1024.pkl', 'stylegan2-ffhq-512x512.pkl', 'stylegan2-ffhq-256x256.pkl',
    'stylegan2-ffhqu-1024x1024.pkl', 'stylegan2-ffhqu-256x256.pkl', 'stylegan2-metfaces-1024x1024.pkl',
    'stylegan2-metfacesu-1024x1024.pkl', 'stylegan2-afhqv2-512x512.pkl', 'stylegan2-afhqcat-512x512.pkl',
    'stylegan2-afhqdog-512x512.pkl', 'stylegan2-afhqwild-512x512.pkl', 'stylegan2-brecahad-512x512.pkl',
    'stylegan2-cifar10-32x32.pkl', 'stylegan2-celebahq-256x256.pkl', 'stylegan2-lsundog-256x256.pkl',
)]
NETWORK_PATTERNS = ('*.pkl', '*.pt')


def browse(folder: str) -> list[str]:
    """Network files directly in `folder`, sorted; [] when it does not exist."""
    if not folder or not os.path.isdir(folder):
        return []
    return sorted(p for pattern in NETWORK_PATTERNS for p in glob.glob(os.path.join(folder, pattern)))


class NetworkChooser:
    """A path/URL box with Open, and Recent / Browse / Published combos; Open calls `on_open(source)`.

    `key` names the recorded item rects (`{key}_box`, `{key}_open`) and scopes the ImGui ids."""

    def __init__(self, viz, key: str, on_open: Callable[[str], None], text: str = ''):
        self.viz = viz
        self.key = key
        self.on_open = on_open
        self.text = text  # Contents of the path/URL box (applied on Open / Enter).

    def box(self) -> None:
        layout.label('Network')
        with layout.item_width(layout.value_width() - layout.em(layout.BUTTON_WIDTH_EM) - layout.em(0.5)):
            entered, self.text = imgui.input_text_with_hint(
                f'##{self.key}', 'path or URL (empty: built-in demo)', self.text,
                imgui.InputTextFlags_.enter_returns_true)
        self.viz.record(f'{self.key}_box')
        imgui.same_line()
        if layout.small_button(f'Open##{self.key}') or entered:
            self.open(self.text.strip())
        self.viz.record(f'{self.key}_open')

    def choices(self) -> None:
        with layout.item_width(layout.value_width()):
            self._combo(f'##recent_{self.key}', 'Recent', self.viz.state.recent)
            self._combo(f'##browse_{self.key}', f'Browse {self.viz.browse_dir or "(no --browse-dir)"}',
                        browse(self.viz.browse_dir))
            self._combo(f'##published_{self.key}', 'Published networks (downloads on Open)', PUBLISHED_URLS,
                        fill_only=True)

    def _combo(self, name: str, preview: str, items: list[str], fill_only: bool = False) -> None:
        if not imgui.begin_combo(name, preview):
            return
        try:
            for item in items:
                if imgui.selectable(item, False)[0]:
                    self.text = item
                    if not fill_only:
                        self.open(item)
        finally:
            imgui.end_combo()

    def open(self, source: str) -> None:
        self.text = source
        self.on_open(source)


class NetworkWidget:
    def __init__(self, viz):
        self.viz = viz
        self.chooser = NetworkChooser(viz, 'network', viz.open_network, viz.state.network)

    def __call__(self) -> None:
        self.chooser.box()
        self._status()
        self.chooser.choices()

    def _status(self) -> None:
        result = self.viz.result
        network = result.a.network if result is not None else None
        # 'untrained demo network' for the built-in one; one line, cut at the edge (hover shows all of it).
        layout.status_line(network.label if network is not None else self.viz.state.network or 'built-in demo network')
        # One row, as tall as a row of buttons, whatever it holds: nothing below moves when a load fails.
        # The whole message is shown above the image.
        if self.viz.load_error:
            with layout.text_color(layout.ERROR_RGBA):
                imgui.align_text_to_frame_padding()
                imgui.text('Not loaded.')
            imgui.same_line()
            if layout.small_button('Retry'):
                self.viz.retry_network()
            imgui.same_line()
            if imgui.button('Built-in demo'):
                self.open('')
            self.viz.record('network_demo')
        else:
            with layout.text_color(layout.DIM_RGBA):
                imgui.align_text_to_frame_padding()
                imgui.text(network.summary() if network is not None else 'loading...')
        self.viz.record('network_status')

    def open(self, source: str) -> None:
        self.chooser.open(source)
