"""Precisions fp32 / bf16 / fp16 / auto (renderer.networks.precision): float32 stays the default and bit for bit
what it was, bfloat16 keeps 40 dB against it in the layers it should, and the commands, the renderer and the
GUI state carry the choice and report what rendered."""

from __future__ import annotations

import json
import math

import pytest
import torch
from net_helpers import make_generator, one_intra_op_thread, psnr  # noqa: F401 (a fixture)

from renderer.commands import equivariance
from renderer.errors import RequestError
from renderer.generation import check_precision, choose_precision, synthesize_images, ws_from_seeds
from renderer.io.native_format import save_network
from renderer.live.render import Renderer, describe_layers
from renderer.live.render_args import NetworkResult, RenderArgs
from renderer.networks.capture import capture_layers
from renderer.networks.precision import cpu_supports_bf16, layer_dtype, network_precision, used_precision
from renderer.ops import filtered_lrelu, upfirdn2d
from renderer.signal.filters import design_lowpass_filter

ARCHS = ('stylegan3-t', 'stylegan3-r', 'stylegan2')
needs_bf16 = pytest.mark.skipif(not cpu_supports_bf16(), reason='oneDNN has no bfloat16 on this CPU')


@pytest.fixture(scope='module')
def nets() -> dict[str, torch.nn.Module]:
    return {arch: make_generator(arch, res=32, dim=32, seed=7) for arch in ARCHS}


@pytest.mark.parametrize('arch', ARCHS)
def test_fp32_is_the_default_and_unchanged(nets, arch):
    G = nets[arch]
    ws = ws_from_seeds(G, [0])
    published = G.synthesis(ws)                        # force_fp32=False: fp16 layers, which a CPU runs in fp32.
    for image in (G.synthesis(ws, precision='fp32'), G.synthesis(ws, force_fp32=True, precision='bf16'),
                  synthesize_images(G, ws)):
        assert image.dtype == torch.float32 and torch.equal(image, published)
    assert used_precision(G, 'fp16', torch.device('cpu')) == 'fp32'


@needs_bf16
@pytest.mark.parametrize('arch', ARCHS)
def test_bf16_keeps_40_db_with_float32_mapping_input_and_image(nets, arch):
    G = nets[arch]
    ws = ws_from_seeds(G, [0, 1])
    reference = synthesize_images(G, ws, precision='fp32')
    with capture_layers(G) as records:
        image = G.synthesis(ws, precision='bf16')
    assert image.dtype == torch.float32 and ws.dtype == torch.float32
    value = psnr(image, reference)
    assert 40 <= value < math.inf, value            # Really computed in another precision, and close.
    dtypes = {r.name: r.dtype for r in records}
    for info in describe_layers(G, torch.device('cpu'), False, 'bf16'):
        assert str(dtypes[info.name]).replace('torch.', '') == info.dtype   # What the GUI's layer table says.
    if arch == 'stylegan2':
        assert dtypes['b32.conv1'] == torch.bfloat16 and dtypes['b32.torgb'] == torch.float32
        assert dtypes['b4.conv1'] == torch.float32   # Not flagged: low resolutions stay float32.
    else:
        names = G.synthesis.layer_names
        assert dtypes['input'] == torch.float32 and dtypes[names[-1]] == torch.float32   # Fourier input, ToRGB.
        flagged = [n for n in names[:-1] if getattr(G.synthesis, n).use_fp16]
        assert flagged and all(dtypes[n] == torch.bfloat16 for n in flagged)


def test_layer_dtypes_follow_the_precision():
    cpu, cuda, f32 = torch.device('cpu'), torch.device('cuda'), torch.float32
    assert layer_dtype('fp16', True, cuda, f32) == torch.float16 and layer_dtype('fp16', True, cpu, f32) == f32
    assert layer_dtype('bf16', True, cpu, f32) == torch.bfloat16
    assert layer_dtype('bf16', True, cpu, f32, makes_image=True) == f32
    assert layer_dtype('bf16', False, cpu, f32) == f32 and layer_dtype('fp32', True, cuda, f32) == f32
    assert layer_dtype('bf16', True, cpu, torch.float64) == torch.bfloat16
    assert network_precision(None) == 'fp16' and network_precision('bf16', force_fp32=True) == 'fp32'
    with pytest.raises(ValueError, match="got 'auto'"):
        network_precision('auto')


@needs_bf16
def test_the_reference_ops_stay_in_bfloat16_and_match_float32():
    torch.manual_seed(0)
    x = torch.randn([2, 5, 20, 18])
    b = torch.randn([5])
    fu = design_lowpass_filter(numtaps=12, cutoff=8, width=6, fs=32)
    fd = design_lowpass_filter(numtaps=12, cutoff=6, width=4, fs=32, radial=True)
    kwargs = dict(fu=fu, fd=fd, b=b, up=2, down=2, padding=[9, 8, 9, 8], gain=math.sqrt(2), slope=0.2, clamp=4)
    for op, args in ((filtered_lrelu, kwargs), (upfirdn2d, dict(f=fu, up=2, padding=[6, 5], gain=4))):
        exact = op(x, **args)
        half = op(x.bfloat16(), **args)
        assert half.dtype == torch.bfloat16 and half.shape == exact.shape
        error = (half.float() - exact).abs().max() / exact.abs().max()
        assert 0 < error < 2 ** -6, (op.__name__, float(error))   # A few bfloat16 roundings, never more.
    # float16 on the CPU is still computed in float32 (then rounded once).
    assert torch.equal(upfirdn2d(x.half(), fu, up=2, padding=[6, 5], gain=4),
                       upfirdn2d(x.half().float(), fu, up=2, padding=[6, 5], gain=4).half())


def test_check_precision_names_what_cannot_run():
    cpu = torch.device('cpu')
    assert check_precision('fp32', cpu) == 'fp32' and check_precision('auto', cpu) == 'auto'
    with pytest.raises(RequestError, match='--precision fp16: fp16 needs a CUDA device'):
        check_precision('fp16', cpu, '--precision')
    with pytest.raises(RequestError, match="got 'fp64'"):
        check_precision('fp64', cpu)


@needs_bf16
def test_auto_takes_a_reduced_precision_only_when_faster_and_faithful(nets):
    G = nets['stylegan3-t']
    choice = choose_precision(G)
    assert set(choice.ms) == {'fp32', 'bf16'} and set(choice.psnr_db) == {'bf16'}
    faster_and_faithful = choice.ms['bf16'] < choice.ms['fp32'] and choice.psnr_db['bf16'] >= 40
    assert choice.precision == ('bf16' if faster_and_faithful else 'fp32')
    assert choice.reason.startswith(f'auto chose {choice.precision}: fp32 ')
    assert choose_precision(G, floor_db=math.inf).precision == 'fp32'   # Nothing reduced keeps an infinite PSNR.


@pytest.fixture(scope='module')
def network_file(nets, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp('nets') / 't.pt'
    save_network(nets['stylegan3-t'], path)
    return str(path)


@needs_bf16
def test_equivariance_json_records_the_precision(network_file, tmp_path):
    argv = ['--network', network_file, '--metrics', 'eq_t', '--num-samples', '2', '--batch', '2', '--no-progress',
            '--filter-radius', '2', '--device', 'cpu']
    results = {}
    for precision in ('fp32', 'bf16'):
        out = tmp_path / f'{precision}.json'
        assert equivariance.run([*argv, '--precision', precision, '--out', str(out)]) == 0
        results[precision] = json.loads(out.read_text())
        assert results[precision]['precision'] == precision and results[precision]['world_size'] == 1
    assert equivariance.run([*argv, '--out', str(tmp_path / 'default.json')]) == 0
    default = json.loads((tmp_path / 'default.json').read_text())
    assert default['precision'] == 'fp32' and default['metrics']['eq_t']['mse'] == results['fp32']['metrics'][
        'eq_t']['mse']
    assert results['bf16']['metrics']['eq_t']['mse'] != results['fp32']['metrics']['eq_t']['mse']


def test_commands_refuse_fp16_on_a_cpu(network_file, tmp_path, capsys):
    code = equivariance.run(['--network', network_file, '--device', 'cpu', '--precision', 'fp16', '--out',
                             str(tmp_path / 'eq.json')])
    assert code == 2
    assert 'error: --precision fp16: fp16 needs a CUDA device' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@needs_bf16
def test_the_renderer_reports_the_precision_that_rendered(network_file):
    renderer = Renderer()
    base = RenderArgs(network=network_file, device='cpu')
    default = renderer.render(base)
    assert default.error is None and default.a.precision == 'fp32'   # fp16 (the default) is fp32 on a CPU.
    calls = renderer.synthesis_calls
    bf16 = renderer.render(base.replace(precision='bf16'))
    assert bf16.error is None and bf16.a.precision == 'bf16' and renderer.synthesis_calls == calls + 1
    assert 'bfloat16' in {layer.dtype for layer in bf16.a.layers}
    assert 30 < _psnr_u8(bf16.image, default.image)
    forced = renderer.render(base.replace(precision='bf16', force_fp32=True))
    assert forced.a.precision == 'fp32' and (forced.image == default.image).all()
    auto = renderer.render(base.replace(precision='auto'))
    assert auto.error is None and auto.a.precision in ('fp32', 'bf16')
    assert any(note.startswith(f'auto chose {auto.a.precision}') for note in auto.a.notes)
    moved = renderer.render(base.replace(precision='bf16', translate=(0.1, 0.0), eq_measure=True))
    assert any('bf16 render' in note for note in moved.a.notes)
    bad = renderer.render(base.replace(precision='fp64'))
    assert bad.error_kind == 'request' and "got 'fp64'" in bad.error


def _psnr_u8(a, b) -> float:
    mse = float(((torch.from_numpy(a).double() - torch.from_numpy(b).double()) / 127.5).square().mean())
    return math.inf if mse == 0 else 20 * math.log10(2) - 10 * math.log10(mse)


def test_the_gui_state_carries_the_precision_and_shows_what_rendered():
    from viz.state import VizState, render_args
    from viz.widgets.performance import rendered_in
    assert render_args(VizState()).precision == 'fp16' == RenderArgs().precision
    assert render_args(VizState(precision='bf16')).precision == 'bf16'
    assert rendered_in([('A', NetworkResult(precision='bf16'))]) == 'bf16'
    assert rendered_in([('A', NetworkResult(precision='bf16')), ('B', NetworkResult())]) == 'A bf16, B fp32'
