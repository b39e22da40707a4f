/**
 * Exporting weights to the MCoRe reference code (spec section 8), the inverse of ./import-map.ts: our
 * parameters (torch layout, as weights.safetensors of a run holds them) -> the reference's `last.pth`
 * dict, its entries in the reference's order:
 *
 *   EnhNet_model     module.enhance.*  the reference's unused 3-layer BiGRU (input D, hidden D/2, both
 *                                      directions), at torch's GRU initialisation U(-1/sqrt(H), 1/sqrt(H))
 *                                      from a fixed seed: mcore has no such module, the reference builds,
 *                                      loads and never uses it
 *   base_model       module._features.<timm key with the GSM level>
 *   psnet_model      module._pred_fine._gru.*, module._pred_fine._fc_out._fc_out.*
 *   decoder          module.model.I.*
 *   regressor_delta  module.layerI.*
 *   optimizer        Adam's state_dict over the reference's five parameter groups (EnhNet, base_model at
 *                    lr x backboneLrScale, psnet, decoder, regressor), each listing its parameters'
 *                    indices; `state` empty (moments start again when the reference trains on)
 *   epoch, epoch_best_aqa               ints
 *   rho_best, L2_min, RL2_min           numpy float64 scalars, pickled as numpy 1.x does
 *                                       (numpy.core.multiarray.scalar(dtype('f8'), bytes))
 *
 * Each BatchNorm gets `num_batches_tracked` (int64 scalar, 0: mcore does not count them), so the
 * reference's strict load_state_dict finds every key. Names come from import-map's sourceName, so a
 * file written here imports back to the same values (bit for bit: float32 throughout).
 *
 * @example
 * const { writer, root } = referenceCheckpoint(tensors, { featureDim: 368, epoch: 3, history: [] });
 * await writeTorchCheckpoint('last.pth', writer, root);
 */
import { McoreError } from '../errors.ts';
import { type Py, py } from '../io/pickle-write.ts';
import { orderedDict, TorchWriter } from '../io/torch-write.ts';
import { createRng } from '../rng.ts';
import { sourceName } from './import-map.ts';

/** A parameter in torch layout. */
export interface TorchLayoutTensor {
  shape: readonly number[];
  data: Float32Array;
}

/** The reference checkpoint's state-dict entries, in the order it saves them. */
export const REFERENCE_STATE_DICTS = [
  'EnhNet_model',
  'base_model',
  'psnet_model',
  'decoder',
  'regressor_delta',
] as const;

export interface ReferenceCheckpointOptions {
  /** D, the backbone's feature width (sizes the EnhNet BiGRU). */
  featureDim: number;
  /** Epochs trained. */
  epoch: number;
  /** Per-epoch test metrics of the run (srcc, mse, rl2), for rho_best, L2_min, RL2_min, epoch_best_aqa. */
  history?: readonly { epoch: number; metrics?: Record<string, number> }[];
  /** Adam: head learning rate and the backbone's multiple of it (defaults 1e-3, 0.1). */
  lr?: number;
  backboneLrScale?: number;
  betas?: [number, number];
  eps?: number;
}

export interface ReferenceCheckpoint {
  writer: TorchWriter;
  root: Py;
  /** Keys per state-dict entry, with `module.`, in file order. */
  keys: Record<(typeof REFERENCE_STATE_DICTS)[number], string[]>;
}

/** A numpy float64 scalar as numpy 1.x pickles it (what the reference's rho_best is). */
export function numpyFloat64(x: number): Py {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setFloat64(0, x, true);
  const dtype = py.build(
    py.reduce(py.global('numpy', 'dtype'), py.str('f8'), py.bool(false), py.bool(true)),
    py.tuple(py.int(3), py.str('<'), py.none(), py.none(), py.none(), py.int(-1), py.int(-1), py.int(0)),
  );
  return py.reduce(py.global('numpy.core.multiarray', 'scalar'), dtype, py.bytes(bytes));
}

const BUFFER = /\.(running_mean|running_var|num_batches_tracked)$/;

/** torch's nn.GRU(D, D/2, num_layers=3, bidirectional=True) at its initialisation, in torch's key order. */
function enhNet(D: number): [string, TorchLayoutTensor][] {
  const H = Math.floor(D / 2);
  const rng = createRng(20_220_727);
  const bound = 1 / Math.sqrt(H);
  const uniform = (shape: number[]): TorchLayoutTensor => {
    const n = shape.reduce((a, d) => a * d, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (rng.next() * 2 - 1) * bound;
    return { shape, data };
  };
  const out: [string, TorchLayoutTensor][] = [];
  for (let layer = 0; layer < 3; layer++) {
    const input = layer === 0 ? D : 2 * H;
    for (const dir of ['', '_reverse']) {
      out.push([`module.enhance.weight_ih_l${layer}${dir}`, uniform([3 * H, input])]);
      out.push([`module.enhance.weight_hh_l${layer}${dir}`, uniform([3 * H, H])]);
      out.push([`module.enhance.bias_ih_l${layer}${dir}`, uniform([3 * H])]);
      out.push([`module.enhance.bias_hh_l${layer}${dir}`, uniform([3 * H])]);
    }
  }
  return out;
}

function best(history: ReferenceCheckpointOptions['history']): {
  epoch: number;
  rho: number;
  l2: number;
  rl2: number;
} {
  // The reference's starting values: rho_best 0, L2_min and RL2_min 1000, epoch_best_aqa 0.
  const r = { epoch: 0, rho: 0, l2: 1000, rl2: 1000 };
  for (const h of history ?? []) {
    const m = h.metrics;
    if (!m) continue;
    if (Number.isFinite(m.srcc) && m.srcc > r.rho) {
      r.rho = m.srcc;
      r.epoch = h.epoch;
    }
    if (Number.isFinite(m.mse) && m.mse < r.l2) r.l2 = m.mse;
    if (Number.isFinite(m.rl2) && m.rl2 < r.rl2) r.rl2 = m.rl2;
  }
  return r;
}

/**
 * Builds the reference's checkpoint from our parameters (name -> torch-layout tensor; backbone,
 * segmenter, decoder and regressor all needed). A parameter with no place in the reference layout, or
 * an entry left empty: E_WEIGHTS naming them.
 */
export function referenceCheckpoint(
  params: Readonly<Record<string, TorchLayoutTensor>>,
  o: ReferenceCheckpointOptions,
): ReferenceCheckpoint {
  const groups: Record<string, [string, TorchLayoutTensor][]> = {};
  for (const e of REFERENCE_STATE_DICTS) groups[e] = [];
  groups.EnhNet_model = enhNet(o.featureDim);
  const unplaced: string[] = [];
  for (const ours of Object.keys(params).sort()) {
    const theirs = sourceName(ours, 'mcore-reference');
    const dot = theirs?.indexOf('.') ?? -1;
    const entry = theirs?.slice(0, dot);
    if (theirs === undefined || entry === undefined || !(entry in groups) || entry === 'EnhNet_model') {
      unplaced.push(ours);
      continue;
    }
    const key = `module.${theirs.slice(dot + 1)}`;
    groups[entry].push([key, params[ours]]);
  }
  const empty = REFERENCE_STATE_DICTS.filter((e) => groups[e].length === 0);
  if (unplaced.length > 0 || empty.length > 0) {
    throw new McoreError(
      'E_WEIGHTS',
      `cannot write the reference checkpoint: ${[
        unplaced.length > 0 ? `no reference name for ${unplaced.join(', ')}` : '',
        empty.length > 0
          ? `no weights for ${empty.join(', ')} (a head-only run needs its backbone weights)`
          : '',
      ]
        .filter(Boolean)
        .join('; ')}`,
    );
  }
  const writer = new TorchWriter();
  const keys = {} as ReferenceCheckpoint['keys'];
  const stateDicts: [string, Py][] = [];
  const paramCounts: number[] = [];
  for (const e of REFERENCE_STATE_DICTS) {
    const items: [string, Py][] = [];
    let count = 0;
    for (const [key, t] of groups[e]) {
      items.push([key, writer.tensor({ dtype: 'F32', shape: t.shape, data: t.data })]);
      if (!BUFFER.test(key)) count++;
      if (key.endsWith('.running_var')) {
        const nbt = key.replace(/running_var$/, 'num_batches_tracked');
        items.push([nbt, writer.tensor({ dtype: 'I64', shape: [], data: new BigInt64Array(1) })]);
      }
    }
    keys[e] = items.map(([k]) => k);
    stateDicts.push([e, orderedDict(items)]);
    paramCounts.push(count);
  }
  const lr = o.lr ?? 1e-3;
  const [b1, b2] = o.betas ?? [0.9, 0.999];
  let next = 0;
  const paramGroups = paramCounts.map((n, i) => {
    const ids = Array.from({ length: n }, () => py.int(next++));
    return py.strDict([
      ['lr', py.float(i === 1 ? lr * (o.backboneLrScale ?? 0.1) : lr)],
      ['betas', py.tuple(py.float(b1), py.float(b2))],
      ['eps', py.float(o.eps ?? 1e-8)],
      ['weight_decay', py.int(0)],
      ['amsgrad', py.bool(false)],
      ['maximize', py.bool(false)],
      ['foreach', py.none()],
      ['capturable', py.bool(false)],
      ['params', py.list(ids)],
    ]);
  });
  const optimizer = py.strDict([
    ['state', py.dict([])],
    ['param_groups', py.list(paramGroups)],
  ]);
  const b = best(o.history);
  const root = py.strDict([
    ...stateDicts,
    ['optimizer', optimizer],
    ['epoch', py.int(o.epoch)],
    ['epoch_best_aqa', py.int(b.epoch)],
    ['rho_best', numpyFloat64(b.rho)],
    ['L2_min', numpyFloat64(b.l2)],
    ['RL2_min', numpyFloat64(b.rl2)],
  ]);
  return { writer, root, keys };
}
