/**
 * `mcore import CHECKPOINT --out BUNDLE --exemplars DATASET [--model VARIANT|FILE.json] [--source S]`
 * `mcore import CHECKPOINT --out WEIGHTS.safetensors [--model VARIANT|FILE.json] [--source S]`
 *
 * Imports weights trained in PyTorch: the MCoRe reference's `last.pth` (spec section 8), timm's
 * `regnety_002` (backbone only) or an mcore weights file, read by src/io/torch.ts and renamed by
 * src/model/import-map.ts. With a folder as --out it writes a scoring bundle (src/score/bundle.ts) with
 * the reference's test protocol: T sampled frames (96 for mcore-regnety002), frames squeezed to S wide x
 * round(S * 200 / 112) high (112 x 200), the centre S x S crop, ImageNet normalisation, scoreScale 1 (raw
 * dive scores), and an exemplar bank of the training clips of DATASET. With a `.safetensors` file as
 * --out it writes the weights (mcore names, torch layout; `mcore train --backbone FILE` takes timm's)
 * and a JSON sidecar with the model config and the import report.
 */
import type { Command } from 'commander';
import { useBackend } from '../backend.ts';
import { McoreError } from '../errors.ts';
import { WEIGHT_SOURCES, type WeightSource } from '../model/import-map.ts';
import { groupNames, type ImportSummary, importCheckpoint, resolveModel } from '../verbs/import.ts';
import { intOption } from './options.ts';
import { type Bar, createBar } from './progress.ts';

/** The lines printed after an import. */
export function formatImport(s: ImportSummary): string {
  const lines = [`imported ${s.imported} parameters from ${s.checkpoint} (${s.source})`];
  const facts = Object.entries(s.scalars).map(
    ([k, v]) => `${k} ${typeof v === 'number' ? Number(v.toPrecision(6)) : v}`,
  );
  if (facts.length > 0) lines.push(`  checkpoint: ${facts.join(', ')}`);
  if (s.initialised.length > 0) {
    lines.push(
      `  initialised, not imported: ${s.initialised.length} (${groupNames(s.initialised)
        .map((g) => g.group)
        .join(', ')})`,
    );
  }
  if (s.unused.length > 0) {
    const groups = groupNames(s.unused).map((g) => `${g.group} ${g.count}`);
    lines.push(`  unused entries: ${s.unused.length} (${groups.join(', ')})`);
  }
  if (s.other.length > 0) lines.push(`  not weights: ${s.other.join(', ')}`);
  lines.push(
    s.kind === 'bundle'
      ? `wrote the scoring bundle ${s.out} (${s.manifest?.frames} frames, ${s.manifest?.transform.resize.width}x${s.manifest?.transform.resize.height} -> crop ${s.manifest?.transform.crop}); score with: mcore score VIDEO --model ${s.out}`
      : `wrote ${s.out} and ${s.out.replace(/\.safetensors$/i, '.json')}`,
  );
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('import')
    .description('import PyTorch weights (MCoRe reference last.pth, timm regnety_002, safetensors)')
    .argument('<checkpoint>', '.pth / .pt (torch.save, torch >= 1.6) or .safetensors')
    .requiredOption('--out <path>', 'bundle folder to write, or FILE.safetensors for the weights only')
    .option(
      '--exemplars <dataset>',
      "exemplar bank for the bundle: a manifest (.json/.csv) or 'synthdive[:...]'",
    )
    .option('--model <variant|file>', 'model variant or ModelConfig JSON file', 'mcore-regnety002')
    .option('--source <kind>', `whose names the file uses (${WEIGHT_SOURCES.join(', ')}); default: detected`)
    .option('--batch <n>', 'videos per backbone run while encoding the exemplars', intOption('--batch'), 4)
    .option('--threads <n>', 'ONNX Runtime threads', intOption('--threads'), 2)
    .action(
      async (
        checkpoint: string,
        o: {
          out: string;
          exemplars?: string;
          model: string;
          source?: string;
          batch: number;
          threads: number;
        },
      ) => {
        if (o.source !== undefined && !(WEIGHT_SOURCES as readonly string[]).includes(o.source)) {
          throw new McoreError('E_INPUT', `--source ${o.source}: use one of ${WEIGHT_SOURCES.join(', ')}`);
        }
        await useBackend('wasm');
        let bar: Bar | undefined;
        const summary = await importCheckpoint(checkpoint, {
          out: o.out,
          model: await resolveModel(o.model),
          exemplars: o.exemplars,
          source: o.source as WeightSource | undefined,
          batch: o.batch,
          threads: o.threads,
          onExemplars: (done, total) => {
            bar ??= createBar('exemplars', total);
            bar.update(done);
            if (done === total) bar.done();
          },
        });
        process.stdout.write(`${formatImport(summary)}\n`);
      },
    );
}
