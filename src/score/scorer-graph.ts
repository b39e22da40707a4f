/**
 * The bundle's scorer graph: `exportScorer` (src/onnx/export.ts) plus a second output `token_delta`
 * [N, K*L], the regressor's value on each of the K*L decoded query tokens before the mean that gives
 * `delta` [N]. It is the same graph with the ReduceMean's input also exposed (an Identity node named
 * `token_delta`), so one scorer run gives the overall and the per-stage relative scores.
 *
 * Why the per-stage delta is meaningful: the decoder attends within a stage only (stage s of q to stage s
 * of e, spec section 2) and the regressor acts on each token alone, so the L values of stage s depend on
 * the stage-s tokens of q and e and nothing else. Their mean is exactly the delta the scorer gives when
 * every stage of both inputs is a copy of stage s (test/score/bundle.test.ts checks this), and the mean
 * of the K per-stage deltas is the overall delta.
 *
 * @example
 * const bytes = scorerWithTokenDeltas(exportScorer(params, cfg)); // outputs: delta [N], token_delta [N, K*L]
 */
import onnxProto from 'onnx-proto';
import { McoreError } from '../errors.ts';
import { TOKEN_DELTA } from './bundle-format.ts';

export { TOKEN_DELTA };

const { onnx } = onnxProto;

/**
 * scorer model bytes (outputs `delta` [N]) -> the same model with a second output `token_delta`
 * [N, K*L] (K*L read from the `q_tokens` input's declared shape). Throws E_INPUT if the graph is not
 * an exported scorer (no ReduceMean node producing `delta`).
 */
export function scorerWithTokenDeltas(bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  const nodes = graph?.node ?? [];
  const outputs = graph?.output ?? [];
  const mean = nodes.find((n) => n.opType === 'ReduceMean' && n.output?.[0] === 'delta');
  const qInput = graph?.input?.find((i) => i.name === 'q_tokens');
  const tokens = qInput?.type?.tensorType?.shape?.dim?.[1]?.dimValue;
  const perToken = mean?.input?.[0];
  if (!graph || perToken === undefined || tokens === undefined || tokens === null) {
    throw new McoreError(
      'E_INPUT',
      'scorer graph: expected the exported scorer (input q_tokens [N, K*L, D], ReduceMean -> delta)',
    );
  }
  if (outputs.some((o) => o.name === TOKEN_DELTA)) return bytes;
  graph.node = [
    ...nodes,
    onnx.NodeProto.create({
      name: `${TOKEN_DELTA}_node`,
      opType: 'Identity',
      input: [perToken],
      output: [TOKEN_DELTA],
    }),
  ];
  graph.output = [
    ...outputs,
    onnx.ValueInfoProto.create({
      name: TOKEN_DELTA,
      type: {
        tensorType: {
          elemType: onnx.TensorProto.DataType.FLOAT,
          shape: { dim: [{ dimParam: 'N' }, { dimValue: tokens }] },
        },
      },
    }),
  ];
  return onnx.ModelProto.encode(model).finish();
}
