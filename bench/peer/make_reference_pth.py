"""
Generates test/fixtures/reference/: PyTorch checkpoints laid out like the MCoRe reference's `last.pth` and
like timm's `regnety_002` state dict, for a TINY configuration with random weights, plus the PyTorch outputs
that mcore must reproduce after importing them. Run with /usr/bin/python3 (torch 1.13) from anywhere:

    /usr/bin/python3 bench/peer/make_reference_pth.py

The math is the PyTorch peer's (mcore_peer.py, written from the spec): its modules are re-hosted in module
trees whose attribute names are the reference's (spec section 8), so their state_dict keys are exactly the
official ones, `module.` prefixes included (each tree is wrapped in nn.DataParallel, as the reference's
training script does before saving):

    base_model       E2EModel._features = RegNetY + GSM     module._features.s1.b1.conv1.gsm.conv3D.weight, ...
    psnet_model      SpotModel._pred_fine = GRUPrediction  module._pred_fine._gru.*, module._pred_fine._fc_out._fc_out.*
    decoder          decoder_fuser.model = [layers]        module.model.0.norm_q.weight, ...
    regressor_delta  MLP_score.layer1..3                   module.layer1.weight, ...
    EnhNet_model     EnhModel.enhance = 3-layer BiGRU       module.enhance.* (trained by nobody, saved anyway)

The checkpoint dict has the reference's entries (save_checkpoint): the five state dicts, `optimizer` (Adam with
the reference's five parameter groups, one step taken), `epoch`, `epoch_best_aqa` and numpy float64
`rho_best`, `L2_min`, `RL2_min`. To exercise the reader the GRU weights are views into one shared storage (as
cuDNN's flattened RNN weights are) and one decoder weight is a transposed (non-contiguous) view.

Files (metadata of the .safetensors names this script, the torch version and the mcore ModelConfig JSON):
    mcore-reference-tiny.pth   the reference-style checkpoint
    timm-regnety-tiny.pth      a timm-style backbone state dict (no prefix, no GSM, head.fc.*), other weights
    reference-io.safetensors   outputs for the fixed input below (peer in float64 on the float32 weights):
        features, logits, pred_transitions, pred_delta_qe, pred_delta_eq   (reference checkpoint, test mode)
        timm.features_nogsm   timm weights in the plain backbone (no GSM)
        timm.features_gsm0    timm weights in the GSM backbone with the GSMs at their init (zero gate)
    dtypes.pth, dtypes-deflate.pth, legacy.pth   reader cases: every storage type, strided and offset views,
        shared storages, a Parameter, torch.Size, argparse.Namespace, numpy scalars; the same re-zipped with
        deflate; and a pre-1.6 (legacy) file.

Input frames (V = 2 videos = 1 pair, T = 8, 3 x 32 x 32, torch layout (V, T, 3, H, W)), element i in row-major
order, with f = i div (3 * 32 * 32) its frame over all videos: float32(((i * (7919 + 104 f)) mod 509) / 254.5 - 1);
the tests compute the same numbers.
"""

import argparse
import copy
import json
import os
import sys
import zipfile

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as fx  # noqa: E402
import mcore_peer as peer  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'reference')
GENERATOR = 'bench/peer/make_reference_pth.py'

V, T, HW = 2, 8, 32


def tiny_config():
    cfg = copy.deepcopy(peer.FULL_CONFIG)
    cfg['backbone'].update(stemWidth=8, widths=[8, 16, 24, 32], depths=[1, 1, 2, 1], gsm=True)
    cfg['segmenter']['dropout'] = 0.5
    cfg['decoder'].update(layers=2, heads=4, mlpRatio=2)
    cfg['regressor']['hidden'] = [16, 8]
    cfg.update(frames=T, imageSize=HW)
    return cfg


def fixed_frames():
    f, c, h, w = np.meshgrid(np.arange(V * T), np.arange(3), np.arange(HW), np.arange(HW), indexing='ij')
    x = (((f * f * 7 + f * 3 + c * 11 + (h // 4) * (5 + f) + (w // 4) * 3) % 17) / 8 - 1).astype(np.float32)
    return torch.from_numpy(x.reshape(V, T, 3, HW, HW))


# ----------------------------------------------------------------------------------------------------
# Module trees with the reference's attribute names, computing with the peer's modules
# ----------------------------------------------------------------------------------------------------

class E2EModel(nn.Module):
    """base_model: `_features` is timm's RegNetY with a GSM around every block's conv1 (peer.Backbone)."""

    def __init__(self, cfg):
        super().__init__()
        self._features = peer.Backbone(cfg['backbone'])

    def forward(self, frames):
        return self._features(frames)


class FCPrediction(nn.Module):
    def __init__(self, feat_dim, num_classes):
        super().__init__()
        self._fc_out = nn.Linear(feat_dim, num_classes)

    def forward(self, x):
        return self._fc_out(x)


class GRUPrediction(nn.Module):
    def __init__(self, feat_dim, num_classes, dropout):
        super().__init__()
        self._gru = nn.GRU(feat_dim, feat_dim, num_layers=1, batch_first=True, bidirectional=True)
        self._fc_out = FCPrediction(2 * feat_dim, num_classes)
        self._dropout = nn.Dropout(dropout)

    def forward(self, x):
        y, _ = self._gru(x)
        return self._fc_out(self._dropout(y))


class SpotModel(nn.Module):
    """psnet_model: the segmenter."""

    def __init__(self, feat_dim, num_classes, dropout):
        super().__init__()
        self._pred_fine = GRUPrediction(feat_dim, num_classes, dropout)

    def forward(self, x):
        return self._pred_fine(x)


class EnhModel(nn.Module):
    """EnhNet_model: a 3-layer BiGRU the reference builds, trains with no loss and saves; unused by MCoRe."""

    def __init__(self, feat_dim):
        super().__init__()
        self.enhance = nn.GRU(feat_dim, feat_dim // 2, num_layers=3, batch_first=True, bidirectional=True)
        self._dropout = nn.Dropout()


class DecoderFuser(nn.Module):
    """decoder: `model` is the list of cross-attention layers (peer.DecoderLayer has the reference's names)."""

    def __init__(self, d, cfg):
        super().__init__()
        self.model = nn.ModuleList([peer.DecoderLayer(d, cfg['heads'], cfg['mlpRatio']) for _ in range(cfg['layers'])])

    def forward(self, q, m):
        for layer in self.model:
            q = layer(q, m)
        return q


def official_name(ours):
    """mcore name -> (entry, key inside the entry's module, without `module.`)."""
    if ours.startswith('backbone.'):
        return 'base_model', '_features.' + ours[len('backbone.'):]
    if ours.startswith('segmenter.gru.'):
        return 'psnet_model', '_pred_fine._gru.' + ours[len('segmenter.gru.'):]
    if ours.startswith('segmenter.fc_out.'):
        return 'psnet_model', '_pred_fine._fc_out._fc_out.' + ours[len('segmenter.fc_out.'):]
    if ours.startswith('decoder.layers.'):
        return 'decoder', 'model.' + ours[len('decoder.layers.'):]
    if ours.startswith('regressor.'):
        return 'regressor_delta', ours[len('regressor.'):]
    raise KeyError(ours)


def he_scale(backbone):
    """Conv weights x sqrt(6): He-normal scale (timm's init) instead of torch's default, so that the features of the
    tiny random backbone vary from frame to frame rather than settling on their BN shifts."""
    with torch.no_grad():
        for m in backbone.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(6 ** 0.5)
                m.weight.copy_(m.weight.float().double())


def share_storage(tensors):
    """Re-homes the .data of `tensors` into views of one flat storage (like cuDNN's flattened RNN weights)."""
    total = sum(t.numel() for t in tensors)
    flat = torch.empty(total, dtype=tensors[0].dtype)
    at = 0
    for t in tensors:
        n = t.numel()
        flat[at:at + n].copy_(t.data.reshape(-1))
        t.data = flat[at:at + n].view(t.shape)
        at += n


def official_trees(model, cfg, gen):
    """The reference's five modules holding `model`'s weights (EnhNet random); checks every key is used."""
    d = cfg['backbone']['widths'][-1]
    trees = {
        'base_model': E2EModel(cfg),
        'psnet_model': SpotModel(d, cfg['stages'] - 1, cfg['segmenter']['dropout']),
        'decoder': DecoderFuser(d, cfg['decoder']),
        'regressor_delta': peer.Regressor(d, cfg['regressor']['hidden']),
    }
    per_entry = {k: {} for k in trees}
    for name, value in model.state_dict().items():
        entry, key = official_name(name)
        per_entry[entry][key] = value.clone()
    for entry, tree in trees.items():
        tree.load_state_dict(per_entry[entry], strict=True)
    enh = EnhModel(d)
    with torch.no_grad():
        for p in enh.parameters():
            p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * 0.25)
    trees['EnhNet_model'] = enh
    return trees


def make_views(trees):
    """Shared storages and a non-contiguous weight, as a real checkpoint may hold (values unchanged)."""
    gru = trees['psnet_model']._pred_fine._gru
    share_storage([getattr(gru, n) for n in gru._flat_weights_names])
    share_storage(list(trees['EnhNet_model'].enhance.parameters()))
    q = trees['decoder'].model[0].attn.q_map.weight
    q.data = q.data.t().contiguous().t()  # same values, strides (1, out): a non-contiguous tensor
    assert not q.is_contiguous()


def reference_optimizer(trees):
    """Adam over the reference's five parameter groups (build_opti_sche), one step on the regressor only."""
    opt = torch.optim.Adam([
        {'params': trees['EnhNet_model'].parameters()},
        {'params': trees['base_model'].parameters(), 'lr': 1e-3 * 0.1},
        {'params': trees['psnet_model'].parameters()},
        {'params': trees['decoder'].parameters()},
        {'params': trees['regressor_delta'].parameters()},
    ], lr=1e-3, weight_decay=0)
    reg = trees['regressor_delta']
    before = {k: v.clone() for k, v in reg.state_dict().items()}
    reg(torch.ones(3, reg.layer1.in_features)).pow(2).sum().backward()
    opt.step()
    reg.load_state_dict(before)  # keep the weights the outputs were computed with
    opt.zero_grad()
    return opt


def reference_checkpoint(gen, frames):
    cfg = tiny_config()
    model = peer.MCoRe(cfg)
    fx.randomise(model, gen)
    he_scale(model.backbone)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith('num_batches_tracked'):
                buf.fill_(2256)
    trees = official_trees(model, cfg, gen)

    model = model.double().eval()
    with torch.no_grad():
        out = model(frames=frames.double())
        fx.check_decode_margin(out['logits'], 'reference logits')
        # the same numbers through the official-named trees
        feats = copy.deepcopy(trees['base_model']).double().eval()(frames.double())
        logits = copy.deepcopy(trees['psnet_model']).double().eval()(feats)
        assert torch.allclose(feats, out['features'], atol=1e-12), 'official base_model differs from the peer'
        assert torch.allclose(logits, out['logits'], atol=1e-12), 'official psnet_model differs from the peer'

    make_views(trees)
    opt = reference_optimizer(trees)
    dp = {k: nn.DataParallel(v) for k, v in trees.items()}
    ckpt = {
        'EnhNet_model': dp['EnhNet_model'].state_dict(),
        'base_model': dp['base_model'].state_dict(),
        'psnet_model': dp['psnet_model'].state_dict(),
        'decoder': dp['decoder'].state_dict(),
        'regressor_delta': dp['regressor_delta'].state_dict(),
        'optimizer': opt.state_dict(),
        'epoch': 199,
        'epoch_best_aqa': 141,
        'rho_best': np.float64(0.9270140426),
        'L2_min': np.float64(33.680214),
        'RL2_min': np.float64(0.0031234),
    }
    for entry in ('EnhNet_model', 'base_model', 'psnet_model', 'decoder', 'regressor_delta'):
        assert all(k.startswith('module.') for k in ckpt[entry]), entry
    gru_w = ckpt['psnet_model']['module._pred_fine._gru.weight_hh_l0']
    assert gru_w.storage_offset() > 0, 'GRU weights should be views into a shared storage'
    io = {
        'features': fx.f32(out['features']), 'logits': fx.f32(out['logits']),
        'pred_transitions': out['transitions'].numpy(),
        'pred_delta_qe': fx.f32(out['delta_qe']), 'pred_delta_eq': fx.f32(out['delta_eq']),
    }
    return cfg, ckpt, io


def timm_state_dict(gen, frames):
    """A timm-named RegNetY state dict (other random weights, head.fc with 10 classes) and the features of the
    plain backbone and of the GSM backbone with zero-gate GSMs on the same frames."""
    cfg = tiny_config()
    plain_cfg = copy.deepcopy(cfg['backbone'])
    plain_cfg['gsm'] = False
    plain = peer.Backbone(plain_cfg)
    fx.randomise(plain, gen)
    he_scale(plain)
    sd = {k: v.clone() for k, v in plain.state_dict().items()}
    d = plain_cfg['widths'][-1]
    sd['head.fc.weight'] = ((torch.rand(10, d, generator=gen) * 2 - 1) * 0.1).float()
    sd['head.fc.bias'] = torch.zeros(10)

    gsm = peer.Backbone(cfg['backbone'])  # GSM conv3D zero at init, GSM BN at its defaults
    renamed = {}
    for k, v in plain.state_dict().items():
        parts = k.split('.')
        if len(parts) > 3 and parts[2] == 'conv1':
            k = '.'.join(parts[:3] + ['net'] + parts[3:])
        renamed[k] = v
    missing, unexpected = gsm.load_state_dict(renamed, strict=False)
    assert not unexpected and all('.conv1.gsm.' in m for m in missing), (missing, unexpected)
    with torch.no_grad():
        f_plain = plain.double().eval()(frames.double())
        f_gsm = gsm.double().eval()(frames.double())
    state = {k: v for k, v in sd.items()}
    return state, {'timm.features_nogsm': fx.f32(f_plain), 'timm.features_gsm0': fx.f32(f_gsm)}


# ----------------------------------------------------------------------------------------------------
# Reader cases
# ----------------------------------------------------------------------------------------------------

def dtypes_checkpoint():
    """Values follow formulas the test recomputes: base(n) = arange(n) * 0.5 - 3."""
    def base(n, dtype):
        return (torch.arange(n, dtype=torch.float64) * 0.5 - 3).to(dtype)

    big = base(40, torch.float32)
    shared = base(30, torch.float64)
    return {
        'f32_permuted': base(24, torch.float32).reshape(2, 3, 4).permute(2, 0, 1),   # (4, 2, 3), strides (1, 12, 4)
        'f16': base(12, torch.float16).reshape(3, 4),
        'bf16_transposed': base(12, torch.bfloat16).reshape(3, 4).t(),              # (4, 3)
        'f64_shared_a': shared[2:8].reshape(2, 3),                                   # offset 2 in a shared storage
        'f64_shared_b': shared[10:30:4],                                             # offset 10, stride 4
        'i64': torch.arange(-3, 3, dtype=torch.int64).reshape(2, 3),
        'i32': torch.tensor([[7, -8], [2**31 - 1, -2**31]], dtype=torch.int32),
        'f32_slice_of_big': big[5:11],
        'f32_big': big,
        'scalar': torch.tensor(2.5),
        'empty': torch.zeros(0, 3),
        'param': nn.Parameter(base(4, torch.float32)),
        'size': torch.Size([3, 4]),
        'args': argparse.Namespace(lr=0.001, feature_arch='rny002_gsm', clip_len=96),
        'np_f64': np.float64(0.25),
        'np_i64': np.int64(-7),
        'nested': {'state_dict': {'module.w': base(3, torch.float32)}, 'step': 5},
    }


def deflated_copy(src, dst):
    """The same zip members re-packed with deflate (torch itself stores them uncompressed)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst + '.tmp', 'w', zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2024, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(fixed, zin.read(info.filename))
    os.replace(dst + '.tmp', dst)


def save(obj, path, **kw):
    torch.save(obj, path + '.tmp', **kw)
    os.replace(path + '.tmp', path)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(3)
    frames = fixed_frames()

    cfg, ckpt, io = reference_checkpoint(gen, frames)
    save(ckpt, os.path.join(OUT, 'mcore-reference-tiny.pth'))
    timm_sd, timm_io = timm_state_dict(gen, frames)
    save(timm_sd, os.path.join(OUT, 'timm-regnety-tiny.pth'))
    io.update(timm_io)
    meta = fx.meta(cfg, {'generator': GENERATOR, 'frames': 'float32(((i * (7919 + 104 * (i div 3072))) mod 509) / 254.5 - 1), '
                         f'torch layout ({V}, {T}, 3, {HW}, {HW})', 'mode': 'eval, decoded transitions'})
    fx.write_safetensors(os.path.join(OUT, 'reference-io.safetensors'), io, meta)

    save(dtypes_checkpoint(), os.path.join(OUT, 'dtypes.pth'))
    deflated_copy(os.path.join(OUT, 'dtypes.pth'), os.path.join(OUT, 'dtypes-deflate.pth'))
    save({'w': torch.ones(2)}, os.path.join(OUT, 'legacy.pth'), _use_new_zipfile_serialization=False)

    # round trip through torch.load: the files are what torch itself reads
    back = torch.load(os.path.join(OUT, 'mcore-reference-tiny.pth'))
    assert sorted(back) == sorted(ckpt) and isinstance(back['rho_best'], np.float64)

    fx.print_sizes(OUT)
    print(json.dumps({'transitions': io['pred_transitions'].tolist()}))


if __name__ == '__main__':
    main()
