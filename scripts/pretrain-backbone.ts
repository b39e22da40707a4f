/**
 * Pretrains the demo's tiny RegNetY + GSM backbone once, on SynthDive clips the demo never sees
 * (seed 1000, disjoint from the demo's seeds), with the full MCoRe objective end to end plus the
 * auxiliary stage-quality loss L_q (PRETRAIN_RECORD in src/verbs/demo.ts); writes the backbone weights to
 * assets/synthdive-backbone.safetensors (PyTorch-style names, torch layout). The demo starts from
 * these weights the way the reference starts from ImageNet weights. About 30 minutes on one core.
 *
 *   npx tsx scripts/pretrain-backbone.ts [--out runs/pretrain-backbone] [--no-quality --asset FILE]
 *
 * `--no-quality` pretrains the same way without L_q (loss.qualityWeight 0: MCoRe's losses alone, the
 * scores only), for the demo's comparison row; `--asset` writes the weights elsewhere than the shipped file.
 *
 * Resumable: run it again after a kill and it continues from the last epoch.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { useBackend } from '../src/backend.ts';
import { createBar } from '../src/cli/progress.ts';
import { backboneSpecs } from '../src/model/regnet.ts';
import { loadWeights, saveWeights } from '../src/model/weights.ts';
import { readCheckpointInfo } from '../src/train/checkpoint.ts';
import { PRETRAIN_RECORD } from '../src/verbs/demo.ts';
import { trainRun } from '../src/verbs/run.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const out = arg('--out', 'runs/pretrain-backbone');
const noQuality = process.argv.includes('--no-quality');
const record = noQuality
  ? {
      ...PRETRAIN_RECORD,
      config: { ...PRETRAIN_RECORD.config, loss: { ...PRETRAIN_RECORD.config.loss, qualityWeight: 0 } },
    }
  : PRETRAIN_RECORD;
await useBackend('wasm');
let bar: ReturnType<typeof createBar> | undefined;
await trainRun(record, {
  out,
  resume: existsSync(path.join(out, 'checkpoint.json')),
  onProgress: (e) => {
    if (e.kind === 'step') {
      bar ??= createBar(`epoch ${e.epoch + 1}/${record.config.train.epochs}`, e.steps);
      bar.update(e.step, `loss ${e.loss.toFixed(3)}`);
    } else if (e.kind === 'epoch') {
      bar?.done(`loss ${e.loss.toFixed(3)} ${JSON.stringify(e.terms)}`);
      bar = undefined;
    }
  },
});
const info = await readCheckpointInfo(out);
const specs = backboneSpecs(record.config.model.backbone, 'backbone');
const { params } = await loadWeights(path.join(out, info.folder, 'weights.safetensors'), specs);
const target = path.resolve(
  arg('--asset', path.join(import.meta.dirname, '../assets/synthdive-backbone.safetensors')),
);
await saveWeights(target, params, specs, {
  generator: 'scripts/pretrain-backbone.ts',
  dataset: record.dataset,
  epochs: String(info.epoch),
  config: JSON.stringify(record.config),
});
console.log(`wrote ${target} (epoch ${info.epoch})`);
