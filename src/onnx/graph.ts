/**
 * A small ONNX graph builder: named float32 initializers, int64 constants, nodes with typed attributes,
 * typed graph inputs/outputs with symbolic dims, serialised to a ModelProto (IR version 8, default
 * domain at opset 17, the first opset with LayerNormalization) through the generated protobuf code of
 * `onnx-proto` (ONNX's own onnx.proto compiled by protobufjs).
 *
 * @example
 * const g = new GraphBuilder('affine');
 * g.input('x', ['N', 4]);
 * const w = g.initializer('w', new Float32Array(8).fill(1), [4, 2]);
 * g.output(g.node('MatMul', ['x', w], {}, 'y'), ['N', 2]);
 * const bytes = g.toModel(); // Uint8Array, loads in onnxruntime
 */
import onnxProto from 'onnx-proto';
import { McoreError } from '../errors.ts';
import { VERSION } from '../version.ts';

const { onnx } = onnxProto;

/** The default-domain opset the exported graphs use. */
export const ONNX_OPSET = 17;
/** ONNX IR version 8 (ONNX 1.10-1.12), the one that introduced opset 17. */
export const ONNX_IR_VERSION = 8;

/** A tensor dim: a fixed size or a symbolic name (`'N'`, `'V'`). */
export type Dim = number | string;

/** A node attribute, tagged by its ONNX type. */
export type Attr =
  | { int: number }
  | { ints: readonly number[] }
  | { float: number }
  | { floats: readonly number[] }
  | { string: string };

type ElemType = 'float32' | 'int64';

const ELEM: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
};

function valueInfo(name: string, elem: ElemType, dims: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[elem],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('int' in a) return { name, type: T.INT, i: a.int };
  if ('ints' in a) return { name, type: T.INTS, ints: [...a.ints] };
  if ('float' in a) return { name, type: T.FLOAT, f: a.float };
  if ('floats' in a) return { name, type: T.FLOATS, floats: [...a.floats] };
  return { name, type: T.STRING, s: new TextEncoder().encode(a.string) };
}

function bytesOf(view: Float32Array | BigInt64Array): Uint8Array {
  // ONNX raw_data is little-endian, as typed arrays are on every platform Node supports.
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

/** Builds one ONNX graph; every value is named by a string, and node outputs get fresh names. */
export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private readonly int64Cache = new Map<string, string>();
  private readonly metadata: Record<string, string> = {};
  private counter = 0;

  constructor(readonly name: string) {}

  private claim(name: string): string {
    if (this.names.has(name)) {
      throw new McoreError('E_INPUT', `onnx graph '${this.name}': the value name '${name}' is used twice`);
    }
    this.names.add(name);
    return name;
  }

  /** A fresh value name with the given stem (`stem_12`). */
  fresh(stem: string): string {
    let n: string;
    do n = `${stem}_${this.counter++}`;
    while (this.names.has(n));
    return n;
  }

  /** Declares a float32 graph input of shape `dims`; returns its name. */
  input(name: string, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), 'float32', dims));
    return name;
  }

  /** Declares the existing value `name` a float32 graph output of shape `dims`. */
  output(name: string, dims: readonly Dim[]): void {
    if (!this.names.has(name)) {
      throw new McoreError(
        'E_INPUT',
        `onnx graph '${this.name}': output '${name}' is not produced by any node`,
      );
    }
    this.outputs.push(valueInfo(name, 'float32', dims));
  }

  /** A float32 initializer `name` of shape `dims` holding `data` (row-major); returns its name. */
  initializer(name: string, data: Float32Array, dims: readonly number[]): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== data.length) {
      throw new McoreError(
        'E_SHAPE',
        `onnx initializer '${name}': ${data.length} values do not fill shape [${dims.join(', ')}]`,
      );
    }
    this.initializers.push({
      name: this.claim(name),
      dims: [...dims],
      dataType: ELEM.float32,
      rawData: bytesOf(data),
    });
    return name;
  }

  /** An int64 1-D constant (shapes, axes, pads, slice bounds); equal lists share one initializer. */
  int64(values: readonly number[]): string {
    const key = values.join(',');
    const cached = this.int64Cache.get(key);
    if (cached !== undefined) return cached;
    const name = this.claim(this.fresh('const_i64'));
    this.initializers.push({
      name,
      dims: [values.length],
      dataType: ELEM.int64,
      rawData: bytesOf(BigInt64Array.from(values, (v) => BigInt(v))),
    });
    this.int64Cache.set(key, name);
    return name;
  }

  /** A float32 scalar constant (0-D). */
  scalar(value: number): string {
    return this.initializer(this.fresh('const_f32'), Float32Array.of(value), []);
  }

  /**
   * Appends a node `opType(inputs) -> output` (an empty input name skips an optional input) and
   * returns its output's name: `out` if given, else a fresh one.
   */
  node(opType: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, out?: string): string {
    return this.nodeN(opType, inputs, 1, attrs, out === undefined ? undefined : [out])[0];
  }

  /** Like `node` with `count` outputs; returns their names. */
  nodeN(
    opType: string,
    inputs: readonly string[],
    count: number,
    attrs: Record<string, Attr> = {},
    outs?: readonly string[],
  ): string[] {
    for (const i of inputs) {
      if (i !== '' && !this.names.has(i)) {
        throw new McoreError('E_INPUT', `onnx graph '${this.name}': ${opType} reads undefined value '${i}'`);
      }
    }
    const stem = opType.toLowerCase();
    const outputs = outs ? outs.map((o) => this.claim(o)) : [];
    while (outputs.length < count) outputs.push(this.claim(this.fresh(stem)));
    this.nodes.push({
      name: this.fresh(`${stem}_node`),
      opType,
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(attrs).map(([k, a]) => attribute(k, a)),
    });
    return outputs;
  }

  /** A key/value pair stored in the model's metadata_props. */
  setMetadata(key: string, value: string): void {
    this.metadata[key] = value;
  }

  /** The serialised ModelProto. */
  toModel(): Uint8Array {
    const model: onnxProto.onnx.IModelProto = {
      irVersion: ONNX_IR_VERSION,
      opsetImport: [{ domain: '', version: ONNX_OPSET }],
      producerName: 'mcore',
      producerVersion: VERSION,
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
      metadataProps: Object.entries(this.metadata).map(([key, value]) => ({ key, value })),
    };
    return onnx.ModelProto.encode(model).finish();
  }
}

/** The default-domain opset version of a serialised model (0 when absent). */
export function modelOpset(bytes: Uint8Array): number {
  const m = onnx.ModelProto.decode(bytes);
  const entry = m.opsetImport.find((o) => (o.domain ?? '') === '');
  return entry ? Number(entry.version) : 0;
}

/** The metadata_props of a serialised model as a record. */
export function modelMetadata(bytes: Uint8Array): Record<string, string> {
  const m = onnx.ModelProto.decode(bytes);
  return Object.fromEntries(m.metadataProps.map((p) => [p.key ?? '', p.value ?? '']));
}
