/**
 * Parameter counts per module (trainable values only; BatchNorm running statistics are buffers, as in
 * PyTorch's `sum(p.numel() for p in model.parameters())`). Spec 2.1b: backbone 2,793,996 + GSM 21,602,
 * segmenter 1,630,978, decoder 4,888,512, regressor 110,977; 9,446,065 in use.
 */
import type { BackboneConfig, ModelConfig } from './config.ts';
import { mcoreSpecs } from './mcore.ts';
import type { ParamSpecs } from './params.ts';
import { regnetBlocks } from './regnet.ts';

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

/**
 * Multiply-accumulates of the backbone for one `size` x `size` frame: convolutions (stem, 1x1, grouped
 * 3x3, downsample), squeeze-excitation and, with GSMs, their gate convolutions; the elementwise work
 * (BatchNorm, activations, shifts) is left out. RegNetY-200MF at 224 x 224: 0.20 G ("200MF").
 */
export function backboneMacs(cfg: BackboneConfig, size: number): { convs: number; gsm: number } {
  const down = (hw: number) => Math.ceil(hw / 2); // 3x3 pad 1 and 1x1 pad 0 at stride 2
  let hw = down(size);
  let convs = hw * hw * 3 * cfg.stemWidth * 9;
  let gsm = 0;
  for (const b of regnetBlocks(cfg)) {
    const out = b.stride === 2 ? down(hw) : hw;
    const inner = b.outChs / b.groups; // input channels per group of conv2
    convs += hw * hw * b.inChs * b.outChs; // conv1
    convs += out * out * b.outChs * inner * 9; // conv2
    convs += out * out * b.outChs * b.outChs; // conv3
    if (b.downsample) convs += out * out * b.inChs * b.outChs;
    convs += 2 * b.outChs * b.seChs; // SE fc1, fc2
    if (cfg.gsm) gsm += hw * hw * 2 * (b.fold / 2) * 27; // gate: 2 outputs, 3x3x3 over fold/2 each
    hw = out;
  }
  return { convs, gsm };
}
