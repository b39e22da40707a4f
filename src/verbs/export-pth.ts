/**
 * `exportRunPth`: the latest checkpoint of a run (written by `mcore train`) as the MCoRe reference
 * code's `last.pth` (src/model/export-map.ts for the layout, src/io/torch-write.ts for the format),
 * so that training can go on at GPU scale in the reference code, and `mcore import` brings the
 * result back. A head-only run takes its backbone from the backbone weights it recorded. No tfjs:
 * the run's weights.safetensors already holds every parameter in torch layout.
 *
 * @example
 * const r = await exportRunPth('runs/a', 'runs/a/last.pth');
 * r.keys.base_model.length; // backbone + GSM entries, num_batches_tracked included
 */
import path from 'node:path';
import { McoreError } from '../errors.ts';
import { readSafetensors, type SafeTensor } from '../io/safetensors.ts';
import { writeTorchCheckpoint } from '../io/torch-write.ts';
import {
  type ReferenceCheckpoint,
  referenceCheckpoint,
  type TorchLayoutTensor,
} from '../model/export-map.ts';
import type { ParamSpecs } from '../model/params.ts';
import { backboneSpecs } from '../model/regnet.ts';
import { torchShape } from '../model/weights.ts';
import { methodOf, readRunRecord } from './run.ts';

function take(
  file: string,
  tensors: Record<string, SafeTensor>,
  specs: ParamSpecs,
  into: Record<string, TorchLayoutTensor>,
): void {
  const problems: string[] = [];
  for (const name of Object.keys(specs).sort()) {
    const t = tensors[name];
    const want = torchShape(specs[name].shape, specs[name].layout);
    if (t === undefined) {
      problems.push(`${name}: missing`);
      continue;
    }
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      problems.push(`${name}: torch shape [${t.shape.join(', ')}], expected [${want.join(', ')}]`);
      continue;
    }
    const data =
      t.data instanceof Float32Array
        ? t.data
        : t.data instanceof Float64Array
          ? Float32Array.from(t.data)
          : undefined;
    if (data === undefined) {
      problems.push(`${name}: dtype ${t.dtype} is not a float type`);
      continue;
    }
    into[name] = { shape: t.shape, data };
  }
  if (problems.length > 0) {
    throw new McoreError(
      'E_WEIGHTS',
      `${file}: ${problems.length} parameter(s) missing or mis-shaped for the run's model: ${problems.join('; ')}`,
    );
  }
}

/** Writes the run's latest checkpoint to `file` in the reference layout; returns its keys per entry. */
export async function exportRunPth(
  runDir: string,
  file: string,
  opts: { checkpoint?: 'latest' | 'best' } = {},
): Promise<ReferenceCheckpoint['keys']> {
  const { info, record } = await readRunRecord(runDir, opts.checkpoint);
  const cfg = record.config;
  const params: Record<string, TorchLayoutTensor> = {};
  const weightsFile = path.join(runDir, info.folder, 'weights.safetensors');
  const weights = await readSafetensors(weightsFile);
  take(weightsFile, weights.tensors, methodOf(record).specs, params);
  if (cfg.train.mode === 'head-only') {
    if (!record.backboneWeights) {
      throw new McoreError(
        'E_CONFIG',
        `${runDir}: a head-only run without recorded backbone weights cannot be exported (the reference checkpoint holds the backbone)`,
      );
    }
    const backbone = await readSafetensors(record.backboneWeights);
    take(record.backboneWeights, backbone.tensors, backboneSpecs(cfg.model.backbone, 'backbone'), params);
  }
  const widths = cfg.model.backbone.widths;
  const ckpt = referenceCheckpoint(params, {
    featureDim: widths[widths.length - 1],
    epoch: info.epoch,
    history: info.history,
    lr: cfg.train.lr,
    backboneLrScale: cfg.train.backboneLrScale,
  });
  await writeTorchCheckpoint(file, ckpt.writer, ckpt.root);
  return ckpt.keys;
}
