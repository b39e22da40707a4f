"""
Generates the golden fixtures under test/fixtures/golden/ from the PyTorch peer (mcore_peer.py), on fixed
random weights. Run once with /usr/bin/python3 (torch 1.13) from anywhere:

    /usr/bin/python3 bench/peer/make_fixtures.py

Weights are stored in torch layout under mcore's parameter names (`*.weights.safetensors`); inputs, outputs
and gradients in `*.io.safetensors`. The peer runs in float64 on the float32-rounded weights and inputs, so
stored outputs are the exact answer for the stored (float32) data. Every file's metadata names the script,
the torch version and the config (JSON, mcore's ModelConfig shape). The safetensors writer below is written
here from the format description (8-byte little-endian header length, JSON header, raw little-endian data)
so that the TypeScript reader is checked against an independent implementation.
"""

import copy
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mcore_peer as peer  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'golden')
GENERATOR = 'bench/peer/make_fixtures.py'

DTYPES = {np.dtype('float32'): 'F32', np.dtype('float64'): 'F64', np.dtype('int64'): 'I64',
          np.dtype('int32'): 'I32', np.dtype('float16'): 'F16'}


def write_safetensors(path, tensors, metadata):
    """tensors: name -> numpy array (written in name order, 8-byte aligned header)."""
    header = {'__metadata__': {k: str(v) for k, v in metadata.items()}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        arr = np.array(tensors[name], order="C")  # (ascontiguousarray would turn 0-d into 1-d)
        raw = arr.astype(arr.dtype.newbyteorder('<'), copy=False).tobytes()
        header[name] = {'dtype': DTYPES[arr.dtype], 'shape': list(arr.shape),
                        'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(',', ':')).encode('utf-8')
    hjson += b' ' * ((8 - len(hjson) % 8) % 8)
    with open(path + '.tmp', 'wb') as f:
        f.write(struct.pack('<Q', len(hjson)))
        f.write(hjson)
        for raw in blobs:
            f.write(raw)
    os.replace(path + '.tmp', path)


def print_sizes(folder):
    """Prints every file of `folder` with its size, then the total (fixtures are committed: keep them small)."""
    total = 0
    for f in sorted(os.listdir(folder)):
        size = os.path.getsize(os.path.join(folder, f))
        total += size
        print(f'{f}: {size} bytes')
    print(f'total {total} bytes')


def f32(t):
    return t.detach().to(torch.float32).cpu().numpy()


def randomise(model, gen, gsm_scale=0.3):
    """BN buffers and affine, LayerNorm affine and the GSM gate conv get random non-trivial values; all values are
    rounded to float32 so the float64 peer computes on exactly what is stored."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_((torch.rand(m.bias.shape, generator=gen) - 0.5) * 0.2)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            elif isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_((torch.rand(m.bias.shape, generator=gen) - 0.5) * 0.2)
            elif isinstance(m, peer.Segmenter):
                # larger output weights than torch's default so decoded transitions have clear winners
                m.fc_out.weight.copy_(torch.rand(m.fc_out.weight.shape, generator=gen) * 2 - 1)
            elif isinstance(m, peer.GSM):
                m.conv3D.weight.copy_((torch.rand(m.conv3D.weight.shape, generator=gen) * 2 - 1) * gsm_scale)
                m.conv3D.bias.copy_((torch.rand(m.conv3D.bias.shape, generator=gen) * 2 - 1) * 0.1)
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(torch.float32).to(t.dtype))


def weights_of(model):
    """state_dict in torch layout under mcore's names, float32, without BN's num_batches_tracked."""
    return {k: f32(v) for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')}


def meta(cfg, extra):
    m = {'generator': GENERATOR, 'torch': torch.__version__, 'layout': 'torch',
         'config': json.dumps(cfg, separators=(',', ':'))}
    m.update(extra)
    return m


def rounded(shape, gen, scale=1.0):
    return (torch.randn(shape, generator=gen) * scale).to(torch.float32).to(torch.float64)


def check_decode_margin(logits, what):
    """Decoded transitions must not depend on float32 vs float64 rounding: top-2 gap in each window > 1e-3."""
    v, t, k1 = logits.shape
    w = int(round(t / k1))
    for i in range(v):
        for k in range(k1):
            win = logits[i, k * w:(k + 1) * w, k].sort(descending=True).values
            assert win[0] - win[1] > 1e-3, f'{what}: near-tie in decode window video {i} channel {k}'


def losses_and_grads(model, out, yq, ye, gt, cfg, wrt):
    """Total loss ('token' contrastive) with its terms, and d total / d every tensor in `wrt` (name -> tensor)."""
    k, steps = cfg['stages'], cfg['tokensPerStage']
    total, terms = peer.total_loss(out, yq, ye, gt, k, steps, 'token')
    cont_stage = peer.contrastive_loss(out['tokens'], k, steps, 'stage')
    names = list(wrt)
    grads = torch.autograd.grad(total, [wrt[n] for n in names], retain_graph=True)
    res = {'loss.total': total, 'loss.aqa': terms['aqa'], 'loss.tas': terms['tas'],
           'loss.cont_token': terms['cont'], 'loss.cont_stage': cont_stage}
    res = {n: f32(v) for n, v in res.items()}  # 0-d: scalar losses
    for n, g in zip(names, grads):
        res[f'grad.{n}'] = f32(g)
    return res


def head_fixture(gen):
    """Heads only on given features: D = 32, T = 16, 2 pairs, decoder 2 layers x 4 heads, regressor [16, 8]."""
    cfg = copy.deepcopy(peer.FULL_CONFIG)
    cfg['backbone'].update(stemWidth=8, widths=[8, 16, 24, 32], depths=[1, 1, 1, 1])
    cfg['segmenter']['dropout'] = 0.0
    cfg['decoder'].update(layers=2, heads=4, mlpRatio=4)
    cfg['regressor']['hidden'] = [16, 8]
    cfg.update(frames=16, imageSize=32)
    d, t, b = 32, 16, 2
    model = peer.MCoRe(cfg, with_backbone=False, feature_dim=d)
    randomise(model, gen)
    model = model.double().eval()
    feats = rounded((2 * b, t, d), gen).requires_grad_(True)
    gt = torch.tensor([[1, 9], [5, 15], [7, 8], [3, 12]], dtype=torch.int64)
    yq = torch.tensor([0.75, -0.5], dtype=torch.float64)
    ye = torch.tensor([0.25, 0.5], dtype=torch.float64)

    out = model(features=feats, transitions=gt)
    # stage pooling must equal torch's own aligned-corner interpolation
    for v in range(2 * b):
        bounds = [0, int(gt[v, 0]), int(gt[v, 1]), t]
        for s in range(3):
            seg = feats[v, bounds[s]:bounds[s + 1]].t().unsqueeze(0)
            ref = F.interpolate(seg, size=5, mode='linear', align_corners=True)[0].t()
            assert torch.allclose(ref, out['tokens'][v, s * 5:(s + 1) * 5], atol=1e-12), 'stage pool mismatch'

    params = dict(model.named_parameters())
    wrt = dict(params)
    wrt['features'] = feats
    io = {
        'features': f32(feats), 'gt_transitions': gt.numpy(), 'yq': f32(yq), 'ye': f32(ye),
        'logits': f32(out['logits']), 'tokens': f32(out['tokens']), 'dq': f32(out['dq']), 'de': f32(out['de']),
        'delta_qe': f32(out['delta_qe']), 'delta_eq': f32(out['delta_eq']),
    }
    io.update(losses_and_grads(model, out, yq, ye, gt, cfg, wrt))
    cont_stage = peer.contrastive_loss(out['tokens'], 3, 5, 'stage')
    io['grad_cont_stage.features'] = f32(torch.autograd.grad(cont_stage, feats, retain_graph=True)[0])
    io['grad_tas.features'] = f32(torch.autograd.grad(peer.tas_loss(out['logits'], gt), feats)[0])

    # inference path: transitions decoded from the segmenter
    with torch.no_grad():
        check_decode_margin(out['logits'], 'head logits')
        ev = model(features=feats)
    io['pred_transitions'] = ev['transitions'].numpy()
    io['pred_delta_qe'] = f32(ev['delta_qe'])
    io['pred_delta_eq'] = f32(ev['delta_eq'])

    # transition decoding edge case: channel 0 peaks at frame 0 (-> 1), channel 1 at the window's last frame
    dl = rounded((2, t, 2), gen)
    dl[0, 0, 0] = 5.0
    dl[1, 15, 1] = 5.0
    dl[1, 3, 0] = 5.0
    dl[0, 8, 1] = 5.0
    check_decode_margin(dl, 'decode logits')
    io['decode.logits'] = f32(dl)
    io['decode.transitions'] = peer.decode_transitions(dl).numpy()

    # decoder alone, memory longer than the query; regressor alone
    with torch.no_grad():
        dq_in, dm_in = rounded((3, 5, d), gen), rounded((3, 7, d), gen)
        io['decoder.q'], io['decoder.m'] = f32(dq_in), f32(dm_in)
        io['decoder.out'] = f32(model.decoder(dq_in, dm_in))
        r_in = rounded((6, d), gen)
        io['regressor.in'], io['regressor.out'] = f32(r_in), f32(model.regressor(r_in))
    return cfg, weights_of(model), io


def full_fixture(gen):
    """Frames -> deltas through the tiny RegNetY+GSM backbone: widths [8,16,24,32], depths [1,1,2,1], stem 8, group
    width 8, 32x32 images, T = 8, 2 pairs; decoder 1 layer x 4 heads, regressor [16, 8]."""
    cfg = copy.deepcopy(peer.FULL_CONFIG)
    cfg['backbone'].update(stemWidth=8, widths=[8, 16, 24, 32], depths=[1, 1, 2, 1], gsm=True)
    cfg['segmenter']['dropout'] = 0.0
    cfg['decoder'].update(layers=1, heads=4, mlpRatio=4)
    cfg['regressor']['hidden'] = [16, 8]
    cfg.update(frames=8, imageSize=32)
    b, t, hw = 2, 8, 32
    model = peer.MCoRe(cfg)
    randomise(model, gen)
    model = model.double().train()  # backbone BNs stay in inference mode; dropout is 0
    for mod in model.backbone.modules():
        assert not isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) or not mod.training
    frames = rounded((2 * b, t, 3, hw, hw), gen)
    gt = torch.tensor([[1, 5], [3, 7], [2, 4], [3, 6]], dtype=torch.int64)
    yq = torch.tensor([0.5, -0.25], dtype=torch.float64)
    ye = torch.tensor([-0.5, 0.75], dtype=torch.float64)

    # GSM of s3.b2 (fold 8) on its actual input, captured by a hook
    blk = model.backbone.s3.b2.conv1
    captured = {}

    def hook(_mod, inp, outp):
        captured['in'], captured['out'] = inp[0].detach().clone(), outp.detach().clone()

    handle = blk.gsm.register_forward_hook(hook)
    out = model(frames=frames, transitions=gt)
    handle.remove()

    params = dict(model.named_parameters())
    io = {
        'frames': f32(frames), 'gt_transitions': gt.numpy(), 'yq': f32(yq), 'ye': f32(ye),
        'features': f32(out['features']), 'logits': f32(out['logits']), 'tokens': f32(out['tokens']),
        'delta_qe': f32(out['delta_qe']), 'delta_eq': f32(out['delta_eq']),
        'gsm.s3.b2.in': f32(captured['in']), 'gsm.s3.b2.out': f32(captured['out']),
    }
    io.update(losses_and_grads(model, out, yq, ye, gt, cfg, params))
    with torch.no_grad():
        check_decode_margin(out['logits'], 'full logits')
        model.eval()
        ev = model(frames=frames)
    io['pred_transitions'] = ev['transitions'].numpy()
    io['pred_delta_qe'] = f32(ev['delta_qe'])
    io['pred_delta_eq'] = f32(ev['delta_eq'])
    return cfg, weights_of(model), io


def gsm_fixture(gen):
    """A lone GSM with fold 16 (4 channels per shuffle row) on x (N=2, fold=16, T=5, H=3, W=2)."""
    gsm = peer.GSM(16)
    randomise(gsm, gen, gsm_scale=0.4)
    gsm = gsm.double().eval()
    x = rounded((2, 16, 5, 3, 2), gen)
    with torch.no_grad():
        y = gsm(x)
        bn = gsm.bn
        gate = torch.tanh(gsm.conv3D(F.relu(bn(x))))
    w = {f'gsm.{k}': f32(v) for k, v in gsm.state_dict().items() if not k.endswith('num_batches_tracked')}
    io = {'x': f32(x), 'y': f32(y), 'gate': f32(gate)}
    return w, io


def nogsm_fixture(gen):
    """Backbone without GSM (plain conv1): widths [8,16,24,32], depths [1,1,1,1], 1 video x 4 frames of 32x32."""
    cfg = copy.deepcopy(peer.FULL_CONFIG)
    cfg['backbone'].update(stemWidth=8, widths=[8, 16, 24, 32], depths=[1, 1, 1, 1], gsm=False)
    cfg.update(frames=4, imageSize=32)
    bb = peer.Backbone(cfg['backbone'])
    randomise(bb, gen)
    bb = bb.double().eval()
    frames = rounded((1, 4, 3, 32, 32), gen)
    with torch.no_grad():
        feats = bb(frames)
    w = {f'backbone.{k}': f32(v) for k, v in bb.state_dict().items() if not k.endswith('num_batches_tracked')}
    return cfg, w, {'frames': f32(frames), 'features': f32(feats)}


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(20240105)

    cfg, w, io = head_fixture(gen)
    info = {'contrastive': 'token', 'tas_weights': '[1,2]', 'mode': 'eval (dropout off), ground-truth transitions'}
    write_safetensors(os.path.join(OUT, 'head.weights.safetensors'), w, meta(cfg, info))
    write_safetensors(os.path.join(OUT, 'head.io.safetensors'), io, meta(cfg, info))

    cfg, w, io = full_fixture(gen)
    write_safetensors(os.path.join(OUT, 'full.weights.safetensors'), w, meta(cfg, info))
    write_safetensors(os.path.join(OUT, 'full.io.safetensors'), io, meta(cfg, info))

    w, io = gsm_fixture(gen)
    write_safetensors(os.path.join(OUT, 'gsm.safetensors'), {**w, **{f'io.{k}': v for k, v in io.items()}},
                      meta({'fold': 16}, {'mode': 'eval'}))

    cfg, w, io = nogsm_fixture(gen)
    write_safetensors(os.path.join(OUT, 'backbone-nogsm.safetensors'), {**w, **{f'io.{k}': v for k, v in io.items()}},
                      meta(cfg, {'mode': 'eval'}))

    print_sizes(OUT)


if __name__ == '__main__':
    main()
