"""
Times one full-size MCoRe head training step in the PyTorch peer: 8 pairs (V = 16 videos) x T = 96 frames
x D = 368 features given (backbone excluded), segmenter + stage pooling + decoder (3 x 8 heads) + regressor,
all three losses, backward, Adam step. CPU, torch.set_num_threads(2); median over 10 steps after 3 warm-up
steps. Prints one JSON line: {"ms_per_step": ..., ...}.

    /usr/bin/python3 bench/peer/bench_heads.py [--steps 10]
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mcore_peer as peer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = peer.FULL_CONFIG
    b, t, d = 8, cfg['frames'], 368
    model = peer.MCoRe(cfg, with_backbone=False, feature_dim=d).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    feats = torch.randn(2 * b, t, d)
    gt = torch.stack([torch.randint(10, 40, (2 * b,)), torch.randint(50, 86, (2 * b,))], 1)
    yq, ye = torch.rand(b) * 30 + 60, torch.rand(b) * 30 + 60

    def step():
        opt.zero_grad()
        out = model(features=feats, transitions=gt)
        loss, _ = peer.total_loss(out, yq, ye, gt, cfg['stages'], cfg['tokensPerStage'], 'token')
        loss.backward()
        opt.step()
        return float(loss)

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({'ms_per_step': round(statistics.median(times), 2), 'min_ms': round(min(times), 2),
                      'steps': args.steps, 'threads': args.threads, 'pairs': b, 'frames': t, 'dim': d,
                      'torch': torch.__version__}))


if __name__ == '__main__':
    main()
