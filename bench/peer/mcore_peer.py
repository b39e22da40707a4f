"""
PyTorch peer of mcore: MCoRe (An, Qi, Ma; ICASSP 2024) written from the project spec
(/work/shared/docs/mcore-method.md), NOT copied from any repository. Parameter names (state_dict keys) are
exactly mcore's, so weights interchange 1:1 through safetensors (torch layout on disk):

    backbone.stem.conv.weight, backbone.s3.b2.conv1.gsm.conv3D.weight, segmenter.gru.weight_ih_l0_reverse,
    decoder.layers.0.attn.q_map.weight, regressor.layer1.bias, ...

Shapes use the project alphabet: B pairs, V = 2B videos ordered [q_1..q_B, e_1..e_B], T frames, K stages,
L tokens per stage, D features. Every BatchNorm of the backbone (the GSM's included) always runs in
inference mode (spec 2.1). Run with /usr/bin/python3 (torch 1.13). `python3 mcore_peer.py` prints the
parameter counts of the full-size model and checks them against spec 2.1b.
"""

import math

import torch
from torch import nn
import torch.nn.functional as F

# Full-size configuration (spec 2.1b, 2.2); the tiny fixture configs override fields.
FULL_CONFIG = {
    'backbone': {'stemWidth': 32, 'widths': [24, 56, 152, 368], 'depths': [1, 1, 4, 7], 'groupWidth': 8,
                 'seRatio': 0.25, 'gsm': True},
    'segmenter': {'dropout': 0.5},
    'decoder': {'layers': 3, 'heads': 8, 'mlpRatio': 4},
    'regressor': {'hidden': [256, 64]},
    'stages': 3,
    'tokensPerStage': 5,
    'frames': 96,
    'imageSize': 112,
}


def gsm_fold(channels):
    """Channels routed through the GSM for a block with `channels` inputs: ceil((C div 4) / 4) * 4."""
    return int(math.ceil((channels // 4) / 4) * 4)


# ----------------------------------------------------------------------------------------------------
# Backbone: RegNetY with Gate Shift Modules (spec 2.1, 2.1b)
# ----------------------------------------------------------------------------------------------------

class FrozenBNMixin:
    """Keeps every BatchNorm in inference mode whatever .train() is called with."""

    def train(self, mode=True):
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self


class ConvBN(nn.Module):
    """conv (no bias) -> BN (eps 1e-5) -> optional ReLU. x: (N, Cin, H, W) -> (N, Cout, H', W')."""

    def __init__(self, cin, cout, k, stride=1, groups=1, act=True):
        super().__init__()
        pad = ((stride - 1) + (k - 1)) // 2  # static padding, spec 2.1b
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x) if self.act else x


class GSM(nn.Module):
    """
    Gate Shift Module (spec 2.1 steps 1-4) on x: (N, fold, T, H, W) -> (N, fold, T, H, W).
    conv3D: (2, fold/2, 3, 3, 3) with groups 2, so gate channel i sees only half i.
    """

    def __init__(self, fold):
        super().__init__()
        assert fold % 4 == 0, f'GSM fold must be a multiple of 4, got {fold}'
        self.fold = fold
        self.conv3D = nn.Conv3d(fold, 2, 3, padding=1, groups=2)
        nn.init.zeros_(self.conv3D.weight)
        nn.init.zeros_(self.conv3D.bias)
        self.bn = nn.BatchNorm3d(fold, eps=1e-5)

    def forward(self, x):
        n, c, t, h, w = x.shape
        half = c // 2
        g = torch.tanh(self.conv3D(F.relu(self.bn(x))))          # (N, 2, T, H, W)
        x1, x2 = x[:, :half], x[:, half:]                          # (N, fold/2, T, H, W) each
        y1, y2 = g[:, 0:1] * x1, g[:, 1:2] * x2
        r1, r2 = x1 - y1, x2 - y2
        zero = torch.zeros_like(y1[:, :, :1])
        out1 = torch.cat([y1[:, :, 1:], zero], dim=2) + r1         # out1[t] = y1[t+1] + r1[t]
        out2 = torch.cat([zero, y2[:, :, :-1]], dim=2) + r2        # out2[t] = y2[t-1] + r2[t]

        def shuffle(z):                                            # new 2j+a <- old a*fold/4 + j
            return z.reshape(n, 2, half // 2, t, h, w).transpose(1, 2).reshape(n, half, t, h, w)

        return torch.cat([shuffle(out1), shuffle(out2)], dim=1)


class GatedConv1(nn.Module):
    """A block's first 1x1 conv wrapped by a GSM over its first `fold` input channels.
    x: (V*T, C, H, W) frames ordered (video, time) -> (V*T, Cout, H, W)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.fold = gsm_fold(cin)
        self.gsm = GSM(self.fold)
        self.net = ConvBN(cin, cout, 1)

    def forward(self, x, frames):
        vt, c, h, w = x.shape
        v = vt // frames
        xs = x[:, :self.fold].reshape(v, frames, self.fold, h, w).permute(0, 2, 1, 3, 4)  # (V, fold, T, H, W)
        ys = self.gsm(xs).permute(0, 2, 1, 3, 4).reshape(vt, self.fold, h, w)
        return self.net(torch.cat([ys, x[:, self.fold:]], dim=1))


class SE(nn.Module):
    """Squeeze-excitation: mean -> 1x1 conv (fc1) -> ReLU -> 1x1 conv (fc2) -> sigmoid -> scale."""

    def __init__(self, channels, rd):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, rd, 1)
        self.fc2 = nn.Conv2d(rd, channels, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class Block(nn.Module):
    """RegNetY bottleneck (ratio 1): conv1 1x1 -> conv2 3x3 grouped (stride) -> SE -> conv3 1x1 (no act)
    -> + shortcut -> ReLU. Shortcut: downsample (1x1 stride conv + BN) in the first block of a stage."""

    def __init__(self, cin, cout, stride, group_width, se_ratio, gsm, first):
        super().__init__()
        self.conv1 = GatedConv1(cin, cout) if gsm else ConvBN(cin, cout, 1)
        self.conv2 = ConvBN(cout, cout, 3, stride=stride, groups=cout // group_width)
        self.se = SE(cout, int(round(cin * se_ratio)))
        self.conv3 = ConvBN(cout, cout, 1, act=False)
        self.downsample = ConvBN(cin, cout, 1, stride=stride, act=False) if first else None

    def forward(self, x, frames):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.conv1(x, frames) if isinstance(self.conv1, GatedConv1) else self.conv1(x)
        y = self.conv3(self.se(self.conv2(y)))
        return F.relu(y + shortcut)


class Stage(nn.Module):
    def __init__(self, cin, cout, depth, cfg):
        super().__init__()
        self.depth = depth
        for i in range(depth):
            blk = Block(cin if i == 0 else cout, cout, 2 if i == 0 else 1, cfg['groupWidth'], cfg['seRatio'],
                        cfg['gsm'], i == 0)
            setattr(self, f'b{i + 1}', blk)

    def forward(self, x, frames):
        for i in range(self.depth):
            x = getattr(self, f'b{i + 1}')(x, frames)
        return x


class Backbone(FrozenBNMixin, nn.Module):
    """frames (V, T, 3, H, W) -> features (V, T, D), D = widths[-1] (global average pool, no head)."""

    def __init__(self, cfg):
        super().__init__()
        self.stem = ConvBN(3, cfg['stemWidth'], 3, stride=2)
        cin = cfg['stemWidth']
        for i, (w, d) in enumerate(zip(cfg['widths'], cfg['depths'])):
            setattr(self, f's{i + 1}', Stage(cin, w, d, cfg))
            cin = w
        self.nstages = len(cfg['widths'])

    def forward(self, frames):
        v, t = frames.shape[:2]
        x = self.stem(frames.reshape(v * t, *frames.shape[2:]))
        for i in range(self.nstages):
            x = getattr(self, f's{i + 1}')(x, t)
        return x.mean((2, 3)).reshape(v, t, -1)


# ----------------------------------------------------------------------------------------------------
# Heads (spec 2, 2.2)
# ----------------------------------------------------------------------------------------------------

class Segmenter(nn.Module):
    """F (V, T, D) -> logits (V, T, K-1): BiGRU (hidden D) -> dropout -> Linear(2D -> K-1)."""

    def __init__(self, d, transitions, dropout=0.5):
        super().__init__()
        self.gru = nn.GRU(d, d, num_layers=1, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.fc_out = nn.Linear(2 * d, transitions)

    def forward(self, feats):
        y, _ = self.gru(feats)
        return self.fc_out(self.dropout(y))


class CrossAttention(nn.Module):
    """q (N, Lq, D), m (N, Lm, D) -> (N, Lq, D); q/k/v maps without bias, keys and values from m."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.scale = (d // heads) ** -0.5
        self.q_map = nn.Linear(d, d, bias=False)
        self.k_map = nn.Linear(d, d, bias=False)
        self.v_map = nn.Linear(d, d, bias=False)
        self.proj = nn.Linear(d, d)

    def forward(self, q, m):
        n, lq, d = q.shape
        lm = m.shape[1]
        hd = d // self.heads
        qh = self.q_map(q).reshape(n, lq, self.heads, hd).transpose(1, 2)   # (N, h, Lq, hd)
        kh = self.k_map(m).reshape(n, lm, self.heads, hd).transpose(1, 2)   # (N, h, Lm, hd)
        vh = self.v_map(m).reshape(n, lm, self.heads, hd).transpose(1, 2)
        a = torch.softmax((qh @ kh.transpose(-2, -1)) * self.scale, dim=-1)  # (N, h, Lq, Lm)
        out = (a @ vh).transpose(1, 2).reshape(n, lq, d)
        return self.proj(out)


class MLP(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class DecoderLayer(nn.Module):
    """Pre-norm cross-attention layer (spec 2.2)."""

    def __init__(self, d, heads, mlp_ratio):
        super().__init__()
        self.norm_q = nn.LayerNorm(d, eps=1e-5)
        self.norm_v = nn.LayerNorm(d, eps=1e-5)
        self.attn = CrossAttention(d, heads)
        self.norm2 = nn.LayerNorm(d, eps=1e-5)
        self.mlp = MLP(d, d * mlp_ratio)

    def forward(self, q, m):
        q = q + self.attn(self.norm_q(q), self.norm_v(m))
        return q + self.mlp(self.norm2(q))


class Decoder(nn.Module):
    """q (N, Lq, D), memory m (N, Lm, D) -> (N, Lq, D)."""

    def __init__(self, d, cfg):
        super().__init__()
        self.layers = nn.ModuleList([DecoderLayer(d, cfg['heads'], cfg['mlpRatio'])
                                     for _ in range(cfg['layers'])])

    def forward(self, q, m):
        for layer in self.layers:
            q = layer(q, m)
        return q


class Regressor(nn.Module):
    """x (..., D) -> (..., 1): D -> h0 -> ReLU -> h1 -> ReLU -> 1."""

    def __init__(self, d, hidden):
        super().__init__()
        self.layer1 = nn.Linear(d, hidden[0])
        self.layer2 = nn.Linear(hidden[0], hidden[1])
        self.layer3 = nn.Linear(hidden[1], 1)

    def forward(self, x):
        return self.layer3(F.relu(self.layer2(F.relu(self.layer1(x)))))


# ----------------------------------------------------------------------------------------------------
# Stage pooling, transition decoding
# ----------------------------------------------------------------------------------------------------

def resample_aligned(seg, steps):
    """seg (n, D) -> (steps, D): linear interpolation with aligned corners (sample i at i*(n-1)/(steps-1));
    n = 1 repeats. Same as F.interpolate(mode='linear', align_corners=True)."""
    n = seg.shape[0]
    if n == 1:
        return seg.expand(steps, seg.shape[1])
    pos = torch.arange(steps, dtype=torch.float64) * (n - 1) / (steps - 1)
    lo = pos.floor().long().clamp(max=n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    frac = (pos - lo.to(torch.float64)).to(seg.dtype).unsqueeze(1)
    return seg[lo] * (1 - frac) + seg[hi] * frac


def stage_pool(feats, transitions, steps):
    """feats (V, T, D), transitions (V, K-1) ints -> tokens (V, K*L, D): stages F[:t0], F[t0:t1], ..., F[t_last:]
    each resampled to L = steps tokens."""
    out = []
    for v in range(feats.shape[0]):
        bounds = [0] + [int(t) for t in transitions[v]] + [feats.shape[1]]
        segs = [resample_aligned(feats[v, bounds[k]:bounds[k + 1]], steps) for k in range(len(bounds) - 1)]
        out.append(torch.cat(segs, 0))
    return torch.stack(out, 0)


def decode_transitions(logits):
    """logits (V, T, K-1) -> transitions (V, K-1) int64: t_k = k*w + argmax_{t in [0, w)} logits[k*w + t, k],
    w = round(T / (K-1)); a predicted 0 becomes 1 (no empty stage)."""
    v, t, k1 = logits.shape
    w = int(round(t / k1))
    out = torch.zeros(v, k1, dtype=torch.int64)
    for i in range(v):
        for k in range(k1):
            tk = int(logits[i, k * w:(k + 1) * w, k].argmax(0)) + k * w
            out[i, k] = 1 if tk == 0 else tk
    return out


# ----------------------------------------------------------------------------------------------------
# The model and its losses (spec 2, 3)
# ----------------------------------------------------------------------------------------------------

class MCoRe(nn.Module):
    def __init__(self, cfg, with_backbone=True, feature_dim=None):
        super().__init__()
        self.cfg = cfg
        d = cfg['backbone']['widths'][-1] if feature_dim is None else feature_dim
        self.backbone = Backbone(cfg['backbone']) if with_backbone else None
        self.segmenter = Segmenter(d, cfg['stages'] - 1, cfg['segmenter']['dropout'])
        self.decoder = Decoder(d, cfg['decoder'])
        self.regressor = Regressor(d, cfg['regressor']['hidden'])

    def train(self, mode=True):
        super().train(mode)
        if self.backbone is not None:
            self.backbone.train(mode)  # re-freezes the backbone's BNs
        return self

    def forward(self, features=None, frames=None, transitions=None):
        """
        features (V, T, D) or frames (V, T, 3, H, W); transitions (V, K-1) ground truth, or None to decode them
        from the segmenter. Returns a dict:
          features (V, T, D), logits (V, T, K-1), transitions (V, K-1), tokens (V, K*L, D),
          dq / de (B, K*L, D) decoder outputs, delta_qe / delta_eq (B,).
        """
        if features is None:
            features = self.backbone(frames)
        logits = self.segmenter(features)
        if transitions is None:
            transitions = decode_transitions(logits.detach())
        k, steps = self.cfg['stages'], self.cfg['tokensPerStage']
        tokens = stage_pool(features, transitions, steps)
        b = features.shape[0] // 2
        q, e = tokens[:b], tokens[b:]
        dq, de = [], []
        for s in range(k):
            sl = slice(s * steps, (s + 1) * steps)
            dq.append(self.decoder(q[:, sl], e[:, sl]))
            de.append(self.decoder(e[:, sl], q[:, sl]))
        dq, de = torch.cat(dq, 1), torch.cat(de, 1)
        return {
            'features': features, 'logits': logits, 'transitions': transitions, 'tokens': tokens,
            'dq': dq, 'de': de,
            'delta_qe': self.regressor(dq).mean((1, 2)), 'delta_eq': self.regressor(de).mean((1, 2)),
        }


def aqa_loss(delta_qe, delta_eq, yq, ye):
    """(B,) x4 -> scalar: MSE(delta(q,e), yq - ye) + MSE(delta(e,q), ye - yq)."""
    return F.mse_loss(delta_qe, yq - ye) + F.mse_loss(delta_eq, ye - yq)


def tas_loss(logits, transitions, weights=(1.0, 2.0)):
    """logits (V, T, K-1), transitions (V, K-1) -> scalar: softmax over time per channel k; mean over videos and
    channels of -w_k log p_k(t_k) (reference: (-log p0(t0) - 2 log p1(t1)) / 2)."""
    logp = torch.log_softmax(logits, dim=1)
    v, _, k1 = logits.shape
    terms = []
    for k in range(k1):
        terms.append(-weights[k] * logp[torch.arange(v), transitions[:, k].long(), k])
    return torch.stack(terms, 1).mean()


def _grace(z1, z2, tau):
    """z1, z2 (n, D) -> (n,): -log(exp(c(z1_j,z2_j)/tau) / (sum_k exp(c(z1_j,z2_k)/tau)
    + sum_{k != j} exp(c(z1_j,z1_k)/tau)))."""
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    between = torch.exp(a @ b.t() / tau)
    refl = torch.exp(a @ a.t() / tau)
    return -torch.log(between.diag() / (between.sum(1) + refl.sum(1) - refl.diag()))


def contrastive_loss(tokens, stages, steps, variant='token'):
    """tokens (V, K*L, D) backbone-feature stage tokens (ground-truth segmentation) -> scalar.
    'token': per pair and stage, GRACE over the L tokens, tau 0.5; 'stage': stage means, GRACE over the K
    stages, tau 0.1. Both: mean of the two directions, mean, x10."""
    b = tokens.shape[0] // 2
    q, e = tokens[:b], tokens[b:]
    terms = []
    if variant == 'token':
        for i in range(b):
            for s in range(stages):
                sl = slice(s * steps, (s + 1) * steps)
                terms.append((_grace(q[i, sl], e[i, sl], 0.5) + _grace(e[i, sl], q[i, sl], 0.5)) * 0.5)
    elif variant == 'stage':
        d = tokens.shape[2]
        qs = q.reshape(b, stages, steps, d).mean(2)
        es = e.reshape(b, stages, steps, d).mean(2)
        for i in range(b):
            terms.append((_grace(qs[i], es[i], 0.1) + _grace(es[i], qs[i], 0.1)) * 0.5)
    else:
        raise ValueError(variant)
    return torch.cat(terms).mean() * 10


def total_loss(out, yq, ye, gt_transitions, stages, steps, variant='token'):
    """Returns (L, {'aqa', 'tas', 'cont'}) for a training forward `out` (ground-truth transitions)."""
    terms = {
        'aqa': aqa_loss(out['delta_qe'], out['delta_eq'], yq, ye),
        'tas': tas_loss(out['logits'], gt_transitions),
        'cont': contrastive_loss(out['tokens'], stages, steps, variant),
    }
    return terms['aqa'] + terms['tas'] + terms['cont'], terms


# ----------------------------------------------------------------------------------------------------
# Parameter counts (spec 2.1b)
# ----------------------------------------------------------------------------------------------------

EXPECTED_COUNTS = {'backbone': 2_793_996, 'gsm': 21_602, 'segmenter': 1_630_978, 'decoder': 4_888_512,
                   'regressor': 110_977}


def count_params(cfg=FULL_CONFIG):
    """Per-module trainable parameter counts (BN running statistics excluded); 'backbone' without the GSMs."""
    model = MCoRe(cfg)
    counts = {k: 0 for k in EXPECTED_COUNTS}
    for name, p in model.named_parameters():
        top = name.split('.')[0]
        if top == 'backbone' and '.gsm.' in name:
            counts['gsm'] += p.numel()
        else:
            counts[top] += p.numel()
    counts['total'] = sum(counts.values())
    return counts


if __name__ == '__main__':
    import json
    c = count_params()
    print(json.dumps(c))
    bad = {k: (c[k], v) for k, v in EXPECTED_COUNTS.items() if c[k] != v}
    if bad:
        raise SystemExit(f'parameter counts differ from spec 2.1b (found, expected): {bad}')
    print('parameter counts match spec 2.1b; total', c['total'])
