/**
 * `mcore features --dataset SPEC --backbone WEIGHTS.safetensors [--config FILE] [--set key=value ...]
 *  [--cache DIR] [--backend wasm|cpu]`: computes (or completes, after an interrupted run) the per-frame
 * backbone features of every clip of a dataset in the on-disk feature cache that head-only training
 * (`mcore train --set train.mode=head-only --backbone FILE`) reads; prints the cache folder and how
 * many clips were computed and how many reused. The cache folder defaults to `.cache/mcore/features`
 * under the current directory (the default of `mcore train` too); the key covers the weights' bytes,
 * the backbone config, model.frames, model.imageSize, the transform and the dataset spec
 * (src/train/feature-cache.ts).
 *
 * @example
 * mcore features --dataset finediving:root=FINADiving_MTL_256s,annotations=Annotations \
 *   --backbone runs/e2e/ckpt-0010/weights.safetensors --set variant=mcore-regnety002
 */
import type { Command } from 'commander';
import { type BackendName, useBackend } from '../backend.ts';
import { sampleClips } from '../data/clips.ts';
import { absoluteDatasetSpec, openDataset, runGeometry } from '../data/open.ts';
import { McoreError } from '../errors.ts';
import { DEFAULT_FEATURE_CACHE, ensureFeatures } from '../train/feature-cache.ts';
import { backendOption, collect, runConfigFor } from './options.ts';
import { type Bar, createBar } from './progress.ts';

export function register(program: Command): void {
  program
    .command('features')
    .description('compute the backbone features of every clip once, into the cache head-only training reads')
    .requiredOption(
      '--dataset <spec>',
      "'synthdive[:seed=N,clips=N,size=N]', 'finediving:root=DIR,annotations=DIR[,keys=K1|K2]' or a manifest (.json/.csv)",
    )
    .option('--backbone <file>', 'backbone weights (safetensors), e.g. RUN/ckpt-NNNN/weights.safetensors')
    .option('--model <file>', 'the same as --backbone')
    .option(
      '--config <file>',
      'JSON config (model.backbone, model.frames, model.imageSize, eval.batchVideos)',
    )
    .option('--set <key=value>', 'override one config field, e.g. model.frames=96 (repeatable)', collect, [])
    .option('--cache <dir>', 'feature cache folder', DEFAULT_FEATURE_CACHE)
    .addOption(backendOption())
    .action(
      async (o: {
        dataset: string;
        backbone?: string;
        model?: string;
        config?: string;
        set: string[];
        cache: string;
        backend: BackendName;
      }) => {
        const backbone = o.backbone ?? o.model;
        if (!backbone) {
          throw new McoreError(
            'E_INPUT',
            'features need backbone weights: --backbone RUN/ckpt-NNNN/weights.safetensors',
          );
        }
        await useBackend(o.backend);
        // The spec with absolute paths, as `mcore train` records it: the same cache key from any directory.
        const spec = absoluteDatasetSpec(o.dataset);
        const config = await runConfigFor(spec, o);
        const geometry = runGeometry(spec, config.model.imageSize);
        const dataset = await openDataset(spec, { width: geometry.width, height: geometry.height });
        const clips = sampleClips(dataset, config.model.frames);
        let bar: Bar | undefined;
        const r = await ensureFeatures({
          datasetSpec: spec,
          dataset,
          clips,
          backboneWeights: backbone,
          config,
          cacheDir: o.cache,
          transform: geometry.transform(false),
          onProgress: (done, total) => {
            bar ??= createBar('features', total);
            bar.update(done);
          },
        });
        bar?.done();
        const { D, T } = r.header;
        process.stdout.write(
          `features of ${clips.length} clips (${T} x ${D} float32 each): computed ${r.computed}, reused ${r.reused}\n` +
            `cache: ${r.dir}\n`,
        );
      },
    );
}
