/**
 * Weights on disk: safetensors in PyTorch's layout under mcore's PyTorch-style names (spec section 8), so
 * a file written here loads into the PyTorch peer (bench/peer/mcore_peer.py) with `load_state_dict` and back.
 * Each tensor is converted between our tfjs layout and torch's by its spec's `layout` (see ./params.ts):
 *   'linear', 'gru': ours [in, out]              <-> torch [out, in]
 *   'conv2d':        ours HWIO [kh, kw, in/g, out] <-> torch OIHW [out, in/g, kh, kw]
 *   'conv3d':        ours DHWIO [kd, kh, kw, in/g, out] <-> torch OIDHW [out, in/g, kd, kh, kw]
 * The conversions are pure permutations, so save -> load is bit-identical.
 *
 * @example
 * await saveWeights('mcore.safetensors', params, specs, { step: '1200' });
 * const { params: loaded, unused } = await loadWeights('mcore.safetensors', specs); // unused: extra keys
 */
import { McoreError } from '../errors.ts';
import { readSafetensors, type SafeTensor, writeSafetensors } from '../io/safetensors.ts';
import { type ParamSpecs, type Params, paramsFromValues, type TorchLayout } from './params.ts';

/** For each torch axis, the axis of our layout it comes from (undefined: identity). */
const TO_TORCH: Readonly<Record<TorchLayout, number[] | undefined>> = {
  same: undefined,
  linear: [1, 0],
  gru: [1, 0],
  conv2d: [3, 2, 0, 1],
  conv3d: [4, 3, 0, 1, 2],
};

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function checkRank(layout: TorchLayout, shape: readonly number[], what: string): number[] | undefined {
  const perm = TO_TORCH[layout];
  if (perm && perm.length !== shape.length) {
    throw new McoreError(
      'E_SHAPE',
      `${what}: layout '${layout}' needs rank ${perm.length}, got shape ${fmt(shape)}`,
    );
  }
  return perm;
}

/** Our shape -> torch's shape for `layout`. */
export function torchShape(shape: readonly number[], layout: TorchLayout): number[] {
  const perm = checkRank(layout, shape, 'torchShape');
  return perm ? perm.map((a) => shape[a]) : shape.slice();
}

/**
 * out[j...] = src[i...] where out axis k is src axis perm[k] (row-major, any rank). Moves 32-bit words,
 * so every value (NaN payloads included) keeps its exact bits.
 */
function permute(data: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const src = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const rank = shape.length;
  const outShape = perm.map((a) => shape[a]);
  const srcStrides = new Array<number>(rank);
  let s = 1;
  for (let a = rank - 1; a >= 0; a--) {
    srcStrides[a] = s;
    s *= shape[a];
  }
  const step = perm.map((a) => srcStrides[a]); // source stride of each output axis
  const out = new Uint32Array(src.length);
  const idx = new Array<number>(rank).fill(0);
  let from = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = src[from];
    for (let k = rank - 1; k >= 0; k--) {
      idx[k]++;
      from += step[k];
      if (idx[k] < outShape[k]) break;
      from -= step[k] * outShape[k];
      idx[k] = 0;
    }
  }
  return new Float32Array(out.buffer);
}

/** Values in our layout (shape `shape`) -> torch layout (shape `torchShape(shape, layout)`). */
export function toTorchLayout(
  data: Float32Array,
  shape: readonly number[],
  layout: TorchLayout,
): Float32Array {
  const perm = checkRank(layout, shape, 'toTorchLayout');
  return perm ? permute(data, shape, perm) : data.slice();
}

/** Values in torch layout (our shape `shape`, i.e. torch shape `torchShape(shape, layout)`) -> our layout. */
export function fromTorchLayout(
  data: Float32Array,
  shape: readonly number[],
  layout: TorchLayout,
): Float32Array {
  const perm = checkRank(layout, shape, 'fromTorchLayout');
  if (!perm) return data.slice();
  const inverse = new Array<number>(perm.length);
  perm.forEach((a, k) => {
    inverse[a] = k;
  });
  return permute(data, torchShape(shape, layout), inverse);
}

/**
 * Writes every parameter named in `specs` as float32 in torch layout (atomically). Throws E_WEIGHTS
 * listing every parameter that is missing from `params` or has the wrong shape, and any param that has
 * no spec (its layout would be unknown). Metadata defaults `format` to 'pt' (what safetensors.torch expects).
 */
export async function saveWeights(
  path: string,
  params: Params,
  specs: ParamSpecs,
  metadata: Record<string, string> = {},
): Promise<void> {
  const problems: string[] = [];
  const tensors: Record<string, SafeTensor> = {};
  for (const name of Object.keys(specs).sort()) {
    const s = specs[name];
    const p = params[name];
    if (!p) {
      problems.push(`${name}: missing from the parameters (expected shape ${fmt(s.shape)})`);
      continue;
    }
    if (p.shape.length !== s.shape.length || p.shape.some((d, i) => d !== s.shape[i])) {
      problems.push(`${name}: shape ${fmt(p.shape)}, spec says ${fmt(s.shape)}`);
      continue;
    }
    if (p.dtype !== 'float32') {
      problems.push(`${name}: dtype ${p.dtype}, expected float32`);
      continue;
    }
    const values = (await p.data()) as Float32Array;
    tensors[name] = {
      dtype: 'F32',
      shape: torchShape(s.shape, s.layout),
      data: toTorchLayout(values, s.shape, s.layout),
    };
  }
  for (const name of Object.keys(params).sort()) {
    if (!specs[name]) problems.push(`${name}: has no spec, so its torch layout is unknown`);
  }
  if (problems.length > 0) {
    throw new McoreError(
      'E_WEIGHTS',
      `${path}: cannot save ${problems.length} parameter(s):\n  ${problems.join('\n  ')}`,
    );
  }
  await writeSafetensors(path, tensors, { format: 'pt', ...metadata });
}

export interface LoadedWeights {
  /** Every spec'd parameter in our layout; trainable ones are tf.Variable (engine-named; our name is the key). */
  params: Params;
  /** Names in the file that no spec asked for (e.g. BatchNorm `num_batches_tracked`), sorted. */
  unused: string[];
  metadata: Record<string, string>;
}

function asFloat32(t: SafeTensor): Float32Array | undefined {
  if (t.data instanceof Float32Array) return t.data;
  if (t.data instanceof Float64Array) return Float32Array.from(t.data);
  return undefined;
}

/**
 * Reads a safetensors file written by `saveWeights` or by PyTorch (torch layout, float32/float64/float16/
 * bfloat16) and converts every tensor named in `specs` to our layout. Missing, mis-shaped or non-float
 * entries raise ONE McoreError('E_WEIGHTS') listing each with the expected and found torch shape; entries
 * without a spec are returned in `unused`. Trainable parameters become tf.Variable with engine-generated
 * names, so several loaded models can coexist.
 */
export async function loadWeights(
  source: string | Uint8Array,
  specs: ParamSpecs,
  name?: string,
): Promise<LoadedWeights> {
  const file = name ?? (typeof source === 'string' ? source : '<memory>');
  const { tensors, metadata } = await readSafetensors(source, file);
  const problems: string[] = [];
  const values: Record<string, Float32Array> = {};
  for (const key of Object.keys(specs).sort()) {
    const s = specs[key];
    const want = torchShape(s.shape, s.layout);
    const t = tensors[key];
    if (!t) {
      problems.push(`${key}: missing (expected torch shape ${fmt(want)})`);
      continue;
    }
    const data = asFloat32(t);
    if (!data) {
      problems.push(`${key}: dtype ${t.dtype} is not a float type (expected torch shape ${fmt(want)})`);
      continue;
    }
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      problems.push(`${key}: expected torch shape ${fmt(want)}, found ${fmt(t.shape)}`);
      continue;
    }
    values[key] = fromTorchLayout(data, s.shape, s.layout);
  }
  if (problems.length > 0) {
    throw new McoreError(
      'E_WEIGHTS',
      `${file}: ${problems.length} of ${Object.keys(specs).length} parameters missing or mis-shaped ` +
        `(does the model config match the file?):\n  ${problems.join('\n  ')}`,
    );
  }
  const params = paramsFromValues(specs, values);
  const unused = Object.keys(tensors)
    .filter((k) => !specs[k])
    .sort();
  return { params, unused, metadata };
}
