import path from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { readCheckpointInfo } from '../../src/train/checkpoint.ts';
import { type RunRecord, trainRun } from '../../src/verbs/run.ts';

/** The weights of a run's latest checkpoint, as plain arrays by name (for toEqual). */
export async function weightsOf(run: string): Promise<Record<string, number[]>> {
  const info = await readCheckpointInfo(run);
  const { tensors } = await readSafetensors(path.join(run, info.folder, 'weights.safetensors'));
  return Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, Array.from(t.data as Float32Array)]));
}

/** Starts a fresh run of `record` in `out` and kills it (aborts) at step 2 of its 2nd epoch; resolves once it stopped. */
export async function trainKilledInSecondEpoch(record: RunRecord, out: string): Promise<void> {
  const controller = new AbortController();
  const run = trainRun(record, {
    out,
    resume: false,
    signal: controller.signal,
    onProgress: (e) => {
      if (e.kind === 'step' && e.epoch === 1 && e.step === 2) controller.abort(new Error('killed'));
    },
  });
  await run.then(
    () => {
      throw new Error(`the run in ${out} was not killed`);
    },
    (err: unknown) => {
      if (!(err instanceof Error && err.message === 'killed')) throw err;
    },
  );
}
