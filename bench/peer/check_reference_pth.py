"""
Checks a checkpoint written by `mcore export --pth` the way the MCoRe reference code uses it, with
/usr/bin/python3 (Debian's python3-torch). Prints one JSON object on stdout:

    python3 bench/peer/check_reference_pth.py last.pth model.json

- `torch.load` reads it (the plain unpickler, as the reference's resume code does);
- the five state dicts load with strict=True into module trees with the reference's attribute names
  (make_reference_pth.py: E2EModel, SpotModel, DecoderFuser, Regressor, EnhModel, each wrapped in
  nn.DataParallel as the reference wraps them), built from the mcore model config `model.json`;
- Adam over the reference's five parameter groups takes the `optimizer` entry (load_state_dict);
- per key: shape, dtype and the SHA-256 of the little-endian bytes, for the caller to compare.
"""

import hashlib
import json
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference_pth as ref  # noqa: E402
import mcore_peer as peer  # noqa: E402


def main(pth, model_json):
    cfg = json.load(open(model_json))
    ckpt = torch.load(pth)
    d = cfg['backbone']['widths'][-1]
    trees = {
        'EnhNet_model': ref.EnhModel(d),
        'base_model': ref.E2EModel(cfg),
        'psnet_model': ref.SpotModel(d, cfg['stages'] - 1, cfg['segmenter']['dropout']),
        'decoder': ref.DecoderFuser(d, cfg['decoder']),
        'regressor_delta': peer.Regressor(d, cfg['regressor']['hidden']),
    }
    loaded = {}
    for name, tree in trees.items():
        try:
            nn.DataParallel(tree).load_state_dict(ckpt[name], strict=True)
            loaded[name] = 'ok'
        except Exception as e:  # noqa: BLE001 - reported to the test
            loaded[name] = str(e).split('\n')[0][:300]
    opt = torch.optim.Adam([
        {'params': trees['EnhNet_model'].parameters()},
        {'params': trees['base_model'].parameters(), 'lr': 1e-4},
        {'params': trees['psnet_model'].parameters()},
        {'params': trees['decoder'].parameters()},
        {'params': trees['regressor_delta'].parameters()},
    ], lr=1e-3, weight_decay=0)
    try:
        opt.load_state_dict(ckpt['optimizer'])
        optimizer = 'ok'
    except Exception as e:  # noqa: BLE001
        optimizer = str(e)[:300]
    keys = {}
    for name in trees:
        keys[name] = {
            k: {'shape': list(v.shape), 'dtype': str(v.dtype),
                'sha256': hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest()}
            for k, v in ckpt[name].items()
        }
    out = {
        'torch': torch.__version__,
        'entries': list(ckpt.keys()),
        'state_dict_types': {k: type(ckpt[k]).__name__ for k in trees},
        'load_strict': loaded,
        'optimizer': optimizer,
        'param_groups': [{'n': len(g['params']), 'lr': g['lr']} for g in ckpt['optimizer']['param_groups']],
        'scalars': {k: {'type': type(ckpt[k]).__module__ + '.' + type(ckpt[k]).__name__, 'value': float(ckpt[k])}
                    for k in ('epoch', 'epoch_best_aqa', 'rho_best', 'L2_min', 'RL2_min')},
        'keys': keys,
    }
    assert isinstance(ckpt['rho_best'], np.float64)
    print(json.dumps(out))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
