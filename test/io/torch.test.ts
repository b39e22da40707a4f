/**
 * The .pth reader against files written by torch 1.13 (test/fixtures/reference, made by
 * bench/peer/make_reference_pth.py) and against zips built here byte by byte (zip64, damaged archives,
 * refused globals). dtypes.pth holds base(n) = arange(n) * 0.5 - 3 in every storage type and view kind.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PyDict } from '../../src/io/pickle.ts';
import { encodeSafetensors } from '../../src/io/safetensors.ts';
import {
  flattenStateDicts,
  PyNamespace,
  parseTorchCheckpoint,
  readTorchCheckpoint,
  TorchTensor,
} from '../../src/io/torch.ts';
import { crc32, ZipArchive } from '../../src/io/zip.ts';
import { expectMcoreRejection } from '../helpers/errors.ts';
import { zip } from '../helpers/zip.ts';

const REF = path.join(import.meta.dirname, '..', 'fixtures', 'reference');
const fixture = (name: string) => path.join(REF, name);

const base = (i: number) => i * 0.5 - 3;

function values(t: TorchTensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

const latin1 = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0));

/**
 * A hand-written protocol-2 pickle of {'w': tensor} with one FloatStorage of 4 elements:
 * _rebuild_tensor_v2(persistent ('storage', FloatStorage, '0', 'cpu', 4), 1, (3,), (1,), False, OrderedDict()).
 */
const ONE_TENSOR_PKL = latin1(
  '\x80\x02}X\x01\x00\x00\x00w' +
    'ctorch._utils\n_rebuild_tensor_v2\n(' +
    '(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ' +
    'K\x01K\x03\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rt' +
    'Rs.',
);

const f32bytes = (xs: number[]) => new Uint8Array(new Float32Array(xs).buffer);

describe('torch zip checkpoints written by torch 1.13', () => {
  it('reads every storage type, strided, offset and shared views, parameters and 0-d tensors', async () => {
    const ckpt = await readTorchCheckpoint(fixture('dtypes.pth'));
    const { tensors, scalars, other } = flattenStateDicts(ckpt, 'dtypes.pth');
    const t = (name: string) => tensors[name];
    // permute(2, 0, 1) of base(24).reshape(2, 3, 4): out[a][b][c] = base(b*12 + c*4 + a)
    const perm: number[] = [];
    for (let a = 0; a < 4; a++)
      for (let b = 0; b < 2; b++) for (let c = 0; c < 3; c++) perm.push(base(b * 12 + c * 4 + a));
    expect(t('f32_permuted').shape).toEqual([4, 2, 3]);
    expect(t('f32_permuted').dtype).toBe('F32');
    expect(values(t('f32_permuted'))).toEqual(perm);
    expect(t('f16').storedAs).toBe('F16');
    expect(t('f16').dtype).toBe('F32');
    expect(values(t('f16'))).toEqual(Array.from({ length: 12 }, (_, i) => base(i)));
    const tr: number[] = [];
    for (let a = 0; a < 4; a++) for (let b = 0; b < 3; b++) tr.push(base(b * 4 + a));
    expect(t('bf16_transposed').storedAs).toBe('BF16');
    expect(t('bf16_transposed').shape).toEqual([4, 3]);
    expect(values(t('bf16_transposed'))).toEqual(tr);
    expect(t('f64_shared_a').data).toBeInstanceOf(Float64Array);
    expect(t('f64_shared_a').shape).toEqual([2, 3]);
    expect(values(t('f64_shared_a'))).toEqual([2, 3, 4, 5, 6, 7].map(base));
    expect(values(t('f64_shared_b'))).toEqual([10, 14, 18, 22, 26].map(base));
    expect(t('i64').data).toBeInstanceOf(BigInt64Array);
    expect(Array.from(t('i64').data as BigInt64Array)).toEqual([-3n, -2n, -1n, 0n, 1n, 2n]);
    expect(Array.from(t('i32').data as Int32Array)).toEqual([7, -8, 2 ** 31 - 1, -(2 ** 31)]);
    expect(values(t('f32_slice_of_big'))).toEqual([5, 6, 7, 8, 9, 10].map(base));
    expect(values(t('f32_big'))).toEqual(Array.from({ length: 40 }, (_, i) => base(i)));
    expect(t('scalar').shape).toEqual([]);
    expect(values(t('scalar'))).toEqual([2.5]);
    expect(t('empty').shape).toEqual([0, 3]);
    expect(t('empty').data.length).toBe(0);
    expect(values(t('param'))).toEqual([0, 1, 2, 3].map(base));
    // {'nested': {'state_dict': {'module.w': ...}, 'step': 5}}: wrapper key adds nothing, module. removed
    expect(values(t('nested.w'))).toEqual([0, 1, 2].map(base));
    expect(Object.keys(tensors).sort()).toHaveLength(13);
    expect(scalars).toEqual({ np_f64: 0.25, np_i64: -7, 'nested.step': 5 });
    expect(other.sort()).toEqual(['args (argparse.Namespace of 3)', 'size (tuple of 2)']);
    const dict = ckpt as PyDict;
    expect(dict.lookup('size')).toEqual([3, 4]);
    const args = dict.lookup('args');
    expect(args).toBeInstanceOf(PyNamespace);
    expect(Object.fromEntries(args as PyNamespace)).toEqual({
      lr: 0.001,
      feature_arch: 'rny002_gsm',
      clip_len: 96,
    });
  });

  it('reads the same archive re-packed with deflate', async () => {
    const bytes = await readFile(fixture('dtypes-deflate.pth'));
    const methods = [...new ZipArchive(bytes, 'x').entries.values()].map((e) => e.method);
    expect(methods.every((m) => m === 8)).toBe(true);
    const a = flattenStateDicts(await readTorchCheckpoint(fixture('dtypes.pth'))).tensors;
    const b = flattenStateDicts(parseTorchCheckpoint(bytes, 'deflate')).tensors;
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    for (const k of Object.keys(a)) {
      expect(b[k].shape, k).toEqual(a[k].shape);
      expect(values(b[k]), k).toEqual(values(a[k]));
    }
  });

  it("finds the reference checkpoint's five state dicts, its scalars and its optimizer state", async () => {
    const ckpt = (await readTorchCheckpoint(fixture('mcore-reference-tiny.pth'))) as PyDict;
    const flat = flattenStateDicts(ckpt, 'mcore-reference-tiny.pth');
    const names = Object.keys(flat.tensors);
    const entries = new Set(names.map((n) => n.split('.')[0]));
    expect([...entries].sort()).toEqual([
      'EnhNet_model',
      'base_model',
      'decoder',
      'psnet_model',
      'regressor_delta',
    ]);
    expect(names.some((n) => n.includes('module.'))).toBe(false);
    expect(names).toContain('base_model._features.s3.b2.conv1.gsm.conv3D.weight');
    expect(names).toContain('psnet_model._pred_fine._fc_out._fc_out.weight');
    expect(flat.tensors['base_model._features.stem.bn.num_batches_tracked'].dtype).toBe('I64');
    expect(flat.scalars).toEqual({
      epoch: 199,
      epoch_best_aqa: 141,
      rho_best: 0.9270140426,
      L2_min: 33.680214,
      RL2_min: 0.0031234,
    });
    expect(flat.other).toEqual(['optimizer (optimizer state)']);
    // the raw structure keeps the optimizer: Adam, five parameter groups, backbone at 0.1x the lr
    const groups = (ckpt.lookup('optimizer') as PyDict).lookup('param_groups') as PyDict[];
    expect(groups.map((g) => g.lookup('lr'))).toEqual([1e-3, 1e-4, 1e-3, 1e-3, 1e-3]);
  });
});

describe('formats and damaged files', () => {
  it('reads a hand-built archive, also with zip64 records', () => {
    const members = [
      { name: 'ck/data.pkl', data: ONE_TENSOR_PKL },
      { name: 'ck/data/0', data: f32bytes([9, 1.5, -2, 4]) },
      { name: 'ck/version', data: latin1('3\n') },
    ];
    for (const zip64 of [false, true]) {
      const { tensors } = flattenStateDicts(parseTorchCheckpoint(zip(members, { zip64 }), 'hand.pth'));
      expect(tensors.w.shape).toEqual([3]);
      expect(values(tensors.w)).toEqual([1.5, -2, 4]); // offset 1
    }
  });

  it('reads big-endian archives (byteorder member)', () => {
    const be = new Uint8Array(16);
    const v = new DataView(be.buffer);
    for (const [i, x] of [9, 1.5, -2, 4].entries()) v.setFloat32(4 * i, x, false);
    const bytes = zip([
      { name: 'ck/data.pkl', data: ONE_TENSOR_PKL },
      { name: 'ck/byteorder', data: latin1('big') },
      { name: 'ck/data/0', data: be },
    ]);
    expect(values(flattenStateDicts(parseTorchCheckpoint(bytes)).tensors.w)).toEqual([1.5, -2, 4]);
  });

  it('refuses a truncated archive, a damaged member and a storage too small, naming the file', async () => {
    const bytes = await readFile(fixture('dtypes.pth'));
    await expectMcoreRejection(
      () => parseTorchCheckpoint(bytes.subarray(0, Math.floor(bytes.length / 2)), 'half.pth'),
      'E_WEIGHTS',
      'half.pth',
      'damaged or truncated zip',
    );
    const flipped = zip([
      { name: 'ck/data.pkl', data: ONE_TENSOR_PKL },
      { name: 'ck/data/0', data: f32bytes([9, 1.5, -2, 4]) },
    ]);
    const storageAt = 30 + 'ck/data.pkl'.length + ONE_TENSOR_PKL.length + 30 + 'ck/data/0'.length;
    flipped[storageAt + 7] ^= 0xff; // the top byte of 1.5f
    await expectMcoreRejection(
      () => parseTorchCheckpoint(flipped, 'flip.pth'),
      'E_WEIGHTS',
      'flip.pth',
      'CRC-32',
    );
    const short = zip([
      { name: 'ck/data.pkl', data: ONE_TENSOR_PKL },
      { name: 'ck/data/0', data: f32bytes([9, 1.5]) },
    ]);
    await expectMcoreRejection(
      () => parseTorchCheckpoint(short, 'short.pth'),
      'E_PICKLE',
      'short.pth',
      "storage '0' has 8 bytes",
    );
  });

  it('refuses non-checkpoints, legacy files, TorchScript archives and missing files', async () => {
    await expectMcoreRejection(
      () => parseTorchCheckpoint(latin1('just some text, not weights'), 'notes.txt'),
      'E_WEIGHTS',
      'notes.txt',
      'neither a PyTorch checkpoint',
    );
    await expectMcoreRejection(
      () => readTorchCheckpoint(fixture('legacy.pth')),
      'E_WEIGHTS',
      'legacy.pth',
      'legacy PyTorch format',
      'torch >= 1.6',
    );
    const script = zip([{ name: 'm/constants.pkl', data: latin1('\x80\x02).') }]);
    await expectMcoreRejection(
      () => parseTorchCheckpoint(script, 'm.pt'),
      'E_WEIGHTS',
      'm.pt',
      'TorchScript',
    );
    await expectMcoreRejection(
      () => readTorchCheckpoint(fixture('absent.pth')),
      'E_WEIGHTS',
      'absent.pth',
      'cannot read',
    );
  });

  it('refuses any global outside the allow-list, naming the file', async () => {
    const evil = latin1('\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.');
    await expectMcoreRejection(
      () => parseTorchCheckpoint(zip([{ name: 'e/data.pkl', data: evil }]), 'evil.pth'),
      'E_PICKLE',
      'evil.pth',
      "forbidden global 'os.system'",
    );
  });

  it('accepts safetensors files as a dict of tensors', () => {
    const bytes = encodeSafetensors({
      'module.fc.weight': { dtype: 'F32', shape: [1, 2], data: new Float32Array([3, 4]) },
    });
    const obj = parseTorchCheckpoint(bytes, 'w.safetensors');
    expect(obj).toBeInstanceOf(PyDict);
    const { tensors } = flattenStateDicts(obj);
    expect(tensors['fc.weight']).toBeInstanceOf(TorchTensor);
    expect(values(tensors['fc.weight'])).toEqual([3, 4]);
  });

  it('flattening refuses files without tensors and name clashes', async () => {
    const empty = new PyDict();
    empty.set('epoch', 3);
    await expectMcoreRejection(
      () => flattenStateDicts(empty, 'e.pth'),
      'E_WEIGHTS',
      'e.pth',
      'holds no tensors',
    );
    const t = new TorchTensor('F32', [1], new Float32Array([1]));
    const clash = new PyDict();
    clash.set('w', t);
    clash.set('module.w', t);
    await expectMcoreRejection(() => flattenStateDicts(clash, 'c.pth'), 'E_WEIGHTS', "'w'");
  });

  it('computes CRC-32 as the zip format does', () => {
    expect(crc32(latin1('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});
