/**
 * The number of stages K of a run comes from its dataset (a manifest's `stages`, a CSV's
 * `# stages:` line, FineDiving's 3, SynthDive's 3), not from a setting the user must know:
 * `stagesFromDataset` sets model.stages to the dataset's K, and loss.tasWeights (one weight per
 * transition) to its default for K unless the user gave them. A model.stages or loss.tasWeights the user
 * set explicitly that does not fit the dataset is refused with E_CONFIG naming both.
 */
import { defaultTasWeights, type RunConfig } from '../config.ts';
import { McoreError } from '../errors.ts';

/** Which of the derived settings the user set (config file or --set); those are checked, not derived. */
export interface ExplicitStageSettings {
  stages: boolean;
  tasWeights: boolean;
}

/** Whether a config file object or a `--set key=value` list sets the dotted `key`. */
export function setsKey(config: unknown, overrides: readonly string[], key: string): boolean {
  if (overrides.some((o) => o.slice(0, o.indexOf('=')).trim() === key)) return true;
  let cur: unknown = config;
  for (const part of key.split('.')) {
    if (cur === null || typeof cur !== 'object' || !(part in cur)) return false;
    cur = (cur as Record<string, unknown>)[part];
  }
  return true;
}

/**
 * The config with model.stages = the dataset's K (stageNames.length) and, when not set by the user,
 * loss.tasWeights = defaultTasWeights(K). Throws E_CONFIG when a setting the user gave contradicts the
 * dataset (default: nothing is explicit, everything is derived).
 */
export function stagesFromDataset(
  cfg: RunConfig,
  stageNames: readonly string[],
  dataset: string,
  explicit: ExplicitStageSettings = { stages: false, tasWeights: false },
): RunConfig {
  const K = stageNames.length;
  const names = `${K} stages (${stageNames.join(', ')})`;
  if (explicit.stages && cfg.model.stages !== K) {
    throw new McoreError(
      'E_CONFIG',
      `model.stages=${cfg.model.stages} is set, but ${dataset} has ${names}; drop model.stages (it is taken from the dataset)`,
    );
  }
  if (explicit.tasWeights && cfg.loss.tasWeights.length !== K - 1) {
    throw new McoreError(
      'E_CONFIG',
      `loss.tasWeights has ${cfg.loss.tasWeights.length} weight(s), but ${dataset} has ${names}: give ${K - 1} (one per transition) or drop it`,
    );
  }
  if (cfg.model.stages === K && cfg.loss.tasWeights.length === K - 1) return cfg;
  return {
    ...cfg,
    model: { ...cfg.model, stages: K },
    loss: explicit.tasWeights ? cfg.loss : { ...cfg.loss, tasWeights: defaultTasWeights(K) },
  };
}
