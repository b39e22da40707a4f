"""
PyTorch side of `npm run bench:score` (bench/score/bench.ts runs it; not meant to be run by hand). It uses
the PyTorch peer of bench/peer/mcore_peer.py with the SAME weights as the ONNX bundle (a safetensors file
in torch layout under mcore's names, written by bench.ts) and torch.set_num_threads(threads).

    backbone  --weights W --frames F.f32 [--features ORT.f32] --runs N
              frames [96, 3, 112, 112] float32 (raw, little-endian) -> features; prints
              {"frames_per_s", "ms", "max_abs_diff" (vs the ONNX Runtime features, when given)}
    e2e       --weights W --job JOB.json
              the reference's test protocol: decode the query video (the same ffmpeg, the same frame
              indices, 112x112), then for EACH exemplar run the whole model on the pair (query, exemplar):
              backbone on both videos, segmenter, decoded transitions, stage pooling, decoder, regressor;
              score = mean(y_e + delta). Prints {"seconds", "decode_s", "model_s", "score"}.
    e2e-cached --weights W --job JOB.json
              the same work done mcore's way, the fair engine comparison: the exemplars' stage tokens are
              computed before the clock starts (mcore's bundle holds them), the query is decoded and encoded
              ONCE (backbone, segmenter, decoded transitions, stage pooling), then the decoder and regressor
              run on the M (query, exemplar) pairs in one batch. Prints the same fields.

Run with /usr/bin/python3 (Debian's torch 1.13).
"""

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'peer'))
import mcore_peer as peer  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def read_safetensors(path):
    """name -> torch tensor (F32 only, which is all bench.ts writes)."""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        if e['dtype'] != 'F32':
            raise SystemExit(f'{path}: {name} is {e["dtype"]}, expected F32')
        a, b = e['data_offsets']
        out[name] = torch.from_numpy(np.frombuffer(blob[a:b], dtype='<f4').reshape(e['shape']).copy())
    return out


def load_model(weights):
    model = peer.MCoRe(peer.FULL_CONFIG).eval()
    missing, unexpected = model.load_state_dict(read_safetensors(weights), strict=False)
    missing = [k for k in missing if not k.endswith('num_batches_tracked')]
    if missing or unexpected:
        raise SystemExit(f'weights do not match the peer: missing {missing[:5]}, unexpected {unexpected[:5]}')
    return model


def bench_backbone(args):
    model = load_model(args.weights)
    t = peer.FULL_CONFIG['frames']
    s = peer.FULL_CONFIG['imageSize']
    frames = torch.from_numpy(np.fromfile(args.frames, dtype='<f4').reshape(1, t, 3, s, s).copy())
    with torch.no_grad():
        feats = model.backbone(frames)  # warm-up
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            feats = model.backbone(frames)
            times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1000
    out = {'frames_per_s': round(t / (ms / 1000), 2), 'ms': round(ms, 1), 'runs': args.runs}
    if args.features:
        ort = np.fromfile(args.features, dtype='<f4').reshape(feats.shape)
        out['max_abs_diff'] = float(np.abs(feats.numpy() - ort).max())
    print(json.dumps(out))


def select_expression(unique):
    terms, i = [], 0
    while i < len(unique):
        j = i
        while j + 1 < len(unique) and unique[j + 1] == unique[j] + 1:
            j += 1
        terms.append(f'between(n,{unique[i]},{unique[j]})' if j > i else f'eq(n,{unique[i]})')
        i = j + 1
    return '+'.join(terms)


def decode(ffmpeg, video, indices, size):
    """The sampled frames of `video` as (T, 3, size, size) float32, ImageNet-normalised (as src/data/video.ts)."""
    unique = sorted(set(indices))
    cmd = [ffmpeg, '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', '-i', video,
           '-map', '0:v:0', '-an', '-sn', '-dn', '-vf', f"select='{select_expression(unique)}',scale={size}:{size}:flags=area",
           '-vsync', 'passthrough', '-frames:v', str(len(unique)), '-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1']
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    frames = np.frombuffer(raw, dtype=np.uint8).reshape(len(unique), size, size, 3)
    at = {f: i for i, f in enumerate(unique)}
    clip = frames[[at[i] for i in indices]].astype(np.float32) / 255.0
    return torch.from_numpy(((clip - MEAN) / STD).transpose(0, 3, 1, 2).copy())


def bench_e2e(args):
    with open(args.job) as f:
        job = json.load(f)
    model = load_model(args.weights)
    t = peer.FULL_CONFIG['frames']
    s = peer.FULL_CONFIG['imageSize']
    m = len(job['exemplarScores'])
    ex = np.fromfile(job['exemplarFrames'], dtype=np.uint8).reshape(m, t, s, s, 3).astype(np.float32) / 255.0
    ex = torch.from_numpy(((ex - MEAN) / STD).transpose(0, 1, 4, 2, 3).copy())  # (M, T, 3, S, S)
    with torch.no_grad():
        model.backbone(ex[:1])  # warm-up
        t0 = time.perf_counter()
        q = decode(job['ffmpeg'], job['video'], job['indices'], s)
        t1 = time.perf_counter()
        preds = []
        for e in range(m):
            out = model(frames=torch.stack([q, ex[e]], 0))  # the pair, both videos encoded again
            preds.append(job['exemplarScores'][e] + float(out['delta_qe'][0]))
        t2 = time.perf_counter()
    print(json.dumps({'seconds': round(t2 - t0, 3), 'decode_s': round(t1 - t0, 3), 'model_s': round(t2 - t1, 3),
                      'score': sum(preds) / m, 'exemplars': m}))


def bench_e2e_cached(args):
    with open(args.job) as f:
        job = json.load(f)
    model = load_model(args.weights)
    t = peer.FULL_CONFIG['frames']
    s = peer.FULL_CONFIG['imageSize']
    k, steps = peer.FULL_CONFIG['stages'], peer.FULL_CONFIG['tokensPerStage']
    m = len(job['exemplarScores'])
    ex = np.fromfile(job['exemplarFrames'], dtype=np.uint8).reshape(m, t, s, s, 3).astype(np.float32) / 255.0
    ex = torch.from_numpy(((ex - MEAN) / STD).transpose(0, 1, 4, 2, 3).copy())  # (M, T, 3, S, S)

    def encode(frames):  # (V, T, 3, S, S) -> stage tokens (V, K*L, D)
        feats = model.backbone(frames)
        return peer.stage_pool(feats, peer.decode_transitions(model.segmenter(feats)), steps)

    runs = []
    with torch.no_grad():
        e_tokens = torch.cat([encode(ex[i:i + 1]) for i in range(m)], 0)  # the exemplar bank, before the clock
        for _ in range(max(1, args.runs)):
            t0 = time.perf_counter()
            q = decode(job['ffmpeg'], job['video'], job['indices'], s)
            t1 = time.perf_counter()
            q_tokens = encode(q.unsqueeze(0)).expand(m, -1, -1)
            dq = []
            for st in range(k):
                sl = slice(st * steps, (st + 1) * steps)
                dq.append(model.decoder(q_tokens[:, sl], e_tokens[:, sl]))
            delta = model.regressor(torch.cat(dq, 1)).mean((1, 2))
            preds = [job['exemplarScores'][e] + float(delta[e]) for e in range(m)]
            t2 = time.perf_counter()
            runs.append((t2 - t0, t1 - t0, t2 - t1))
    total, dec, mod = sorted(runs)[len(runs) // 2]  # the median run
    print(json.dumps({'seconds': round(total, 3), 'decode_s': round(dec, 3), 'model_s': round(mod, 3),
                      'score': sum(preds) / m, 'exemplars': m, 'runs': len(runs)}))


def bench_gemm(args):
    """float32 peak of this machine: GFLOP/s of a 2048 x 2048 matrix product (best of 5)."""
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = float('inf')
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({'gflops': round(2 * n ** 3 / best / 1e9, 1), 'n': n}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('what', choices=['backbone', 'e2e', 'e2e-cached', 'gemm'])
    ap.add_argument('--weights')
    ap.add_argument('--frames')
    ap.add_argument('--features')
    ap.add_argument('--job')
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.what != 'gemm' and not args.weights:
        ap.error(f'{args.what} needs --weights')
    if args.what == 'gemm':
        bench_gemm(args)
    elif args.what == 'backbone':
        bench_backbone(args)
    elif args.what == 'e2e-cached':
        bench_e2e_cached(args)
    else:
        bench_e2e(args)


if __name__ == '__main__':
    main()
