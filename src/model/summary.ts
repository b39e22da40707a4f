/**
 * Parameter counts per module (trainable values only; BatchNorm running statistics are buffers, as in
 * PyTorch's `sum(p.numel() for p in model.parameters())`). Spec 2.1b: backbone 2,793,996 + GSM 21,602,
 * segmenter 1,630,978, decoder 4,888,512, regressor 110,977; 9,446,065 in use.
 */
import type { ModelConfig } from './config.ts';
import { mcoreSpecs } from './mcore.ts';
import type { ParamSpecs } from './params.ts';

export interface ModuleCount {
  module: string;
  params: number;
  tensors: number;
}

const MODULES: readonly { module: string; match: (name: string) => boolean }[] = [
  { module: 'backbone', match: (n) => n.startsWith('backbone.') && !n.includes('.gsm.') },
  { module: 'gsm', match: (n) => n.startsWith('backbone.') && n.includes('.gsm.') },
  { module: 'segmenter', match: (n) => n.startsWith('segmenter.') },
  { module: 'decoder', match: (n) => n.startsWith('decoder.') },
  { module: 'regressor', match: (n) => n.startsWith('regressor.') },
];

export function countByModule(specs: ParamSpecs): ModuleCount[] {
  const rows = MODULES.map(({ module }) => ({ module, params: 0, tensors: 0 }));
  for (const [name, s] of Object.entries(specs)) {
    if (!s.trainable) continue;
    const i = MODULES.findIndex((m) => m.match(name));
    if (i < 0) continue;
    rows[i].params += s.shape.reduce((a, b) => a * b, 1);
    rows[i].tensors += 1;
  }
  return rows;
}

/** Per-module counts of the whole model (backbone included) plus a total row. */
export function modelSummary(cfg: ModelConfig): ModuleCount[] {
  const rows = countByModule(mcoreSpecs(cfg, { backbone: true }));
  const total = rows.reduce(
    (a, r) => ({ module: 'total', params: a.params + r.params, tensors: a.tensors + r.tensors }),
    {
      module: 'total',
      params: 0,
      tensors: 0,
    },
  );
  return [...rows, total];
}
