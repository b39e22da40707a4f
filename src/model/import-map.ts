/**
 * Importing weights trained elsewhere (spec section 8): the name map from the MCoRe reference
 * checkpoint and from timm's `regnety_002` to mcore's parameter names, with every layout change done by
 * ./weights.ts (`fromTorchLayout`: OIHW -> HWIO, OIDHW -> DHWIO, Linear and GRU [out, in] -> [in, out];
 * GRU gates keep torch's order r, z, n).
 *
 * Sources, as flattened by `flattenStateDicts` (src/io/torch.ts: `module.` removed, entries of the
 * reference's `last.pth` prefixed with their key):
 *
 *   mcore-reference  backbone.X                    <- base_model._features.X   (X with the GSM level:
 *                                                      sX.bY.conv1.gsm.*, sX.bY.conv1.net.*)
 *                    segmenter.gru.P               <- psnet_model._pred_fine._gru.P
 *                    segmenter.fc_out.P            <- psnet_model._pred_fine._fc_out._fc_out.P
 *                    decoder.layers.I.P            <- decoder.model.I.P
 *                    regressor.layerI.P            <- regressor_delta.layerI.P
 *   timm-regnety     backbone.X                    <- X, with backbone.sX.bY.conv1.net.* <- sX.bY.conv1.*;
 *                                                      the GSM (conv1.gsm.*) keeps its initialisation
 *                                                      (zero gate: the GSM is a channel permutation, as
 *                                                      when the reference started from timm's weights)
 *   mcore            our own names (a file written by saveWeights)
 *
 * Nothing is skipped silently: entries the model does not use (the reference's unused `EnhNet_model`,
 * BatchNorm `num_batches_tracked`, timm's classifier `head.fc.*`) are returned in `unused`, and every
 * missing, mis-shaped or non-float entry is listed in ONE McoreError('E_WEIGHTS') with the expected and
 * found torch shapes.
 *
 * @example
 * const flat = flattenStateDicts(await readTorchCheckpoint('last.pth'), 'last.pth');
 * const { params, unused } = importParams(flat, modelConfig('mcore-regnety002'), { file: 'last.pth' });
 */
import { McoreError } from '../errors.ts';
import type { FlatStateDict, TorchTensor } from '../io/torch.ts';
import { createRng, type Rng } from '../rng.ts';
import type { ModelConfig } from './config.ts';
import { mcoreSpecs } from './mcore.ts';
import { initValue, type ParamSpecs, type Params, paramsFromValues } from './params.ts';
import { backboneSpecs } from './regnet.ts';
import { fromTorchLayout, torchShape } from './weights.ts';

/** Where a checkpoint's names come from. */
export type WeightSource = 'mcore-reference' | 'timm-regnety' | 'mcore';

export const WEIGHT_SOURCES: readonly WeightSource[] = ['mcore-reference', 'timm-regnety', 'mcore'];

/** The reference checkpoint's entries (`last.pth`), after flattenStateDicts. */
const REFERENCE_ENTRIES = [
  'base_model.',
  'psnet_model.',
  'decoder.model.',
  'regressor_delta.',
  'EnhNet_model.',
];

/**
 * Guesses the source of a flattened state dict from its names: the reference's entries, timm's
 * `stem.conv.weight` at the top, or mcore's `backbone.` / `segmenter.` prefixes. Undefined if none fits.
 */
export function detectSource(names: readonly string[]): WeightSource | undefined {
  if (names.some((n) => REFERENCE_ENTRIES.some((p) => n.startsWith(p)))) return 'mcore-reference';
  if (names.includes('stem.conv.weight')) return 'timm-regnety';
  if (names.some((n) => /^(backbone|segmenter|decoder|regressor)\./.test(n))) return 'mcore';
  return undefined;
}

/**
 * The name in a `source` checkpoint that fills our parameter `ours`, or undefined when that source has
 * no such parameter (it keeps its initial value: timm's files have no GSM).
 */
export function sourceName(ours: string, source: WeightSource): string | undefined {
  if (source === 'mcore') return ours;
  if (source === 'timm-regnety') {
    if (!ours.startsWith('backbone.')) return undefined;
    const key = ours.slice('backbone.'.length);
    if (/\.conv1\.gsm\./.test(key)) return undefined;
    return key.replace(/\.conv1\.net\./, '.conv1.');
  }
  if (ours.startsWith('backbone.')) return `base_model._features.${ours.slice('backbone.'.length)}`;
  if (ours.startsWith('segmenter.gru.'))
    return `psnet_model._pred_fine._gru.${ours.slice('segmenter.gru.'.length)}`;
  if (ours.startsWith('segmenter.fc_out.')) {
    return `psnet_model._pred_fine._fc_out._fc_out.${ours.slice('segmenter.fc_out.'.length)}`;
  }
  if (ours.startsWith('decoder.layers.')) return `decoder.model.${ours.slice('decoder.layers.'.length)}`;
  if (ours.startsWith('regressor.')) return `regressor_delta.${ours.slice('regressor.'.length)}`;
  return undefined;
}

/** The parameters a source provides: the whole model, or only the backbone for timm's classifier weights. */
export function importSpecs(
  cfg: ModelConfig,
  source: WeightSource,
  names: readonly string[] = [],
): ParamSpecs {
  if (source === 'timm-regnety') return backboneSpecs(cfg.backbone, 'backbone');
  if (source === 'mcore' && !names.some((n) => n.startsWith('backbone.'))) return mcoreSpecs(cfg);
  return mcoreSpecs(cfg, { backbone: true });
}

export interface ImportOptions {
  /** Names the checkpoint in errors. */
  file?: string;
  /** Overrides detectSource. */
  source?: WeightSource;
  /** Draws the initial values of parameters the source lacks (default: a fixed seed; GSM inits are constants). */
  rng?: Rng;
}

export interface ImportedWeights {
  source: WeightSource;
  specs: ParamSpecs;
  /** Every spec'd parameter in our layout; trainable ones are tf.Variable (engine-named; our name is the key). */
  params: Params;
  /** Our names filled from the file, sorted. */
  imported: string[];
  /** Our names the source does not provide, left at their initialisation (timm: the GSMs), sorted. */
  initialised: string[];
  /** Names in the file that no parameter takes (EnhNet_model.*, *.num_batches_tracked, head.fc.*), sorted. */
  unused: string[];
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function floatData(t: TorchTensor): Float32Array | undefined {
  if (t.data instanceof Float32Array) return t.data;
  if (t.data instanceof Float64Array) return Float32Array.from(t.data);
  return undefined;
}

/**
 * Maps a flattened checkpoint onto the parameters of `cfg` (see the module comment). Throws ONE
 * McoreError('E_WEIGHTS') listing every missing, mis-shaped or non-float entry (our name <- their name,
 * expected and found torch shapes) and E_WEIGHTS when the source cannot be recognised.
 */
export function importParams(
  flat: FlatStateDict,
  cfg: ModelConfig,
  opts: ImportOptions = {},
): ImportedWeights {
  const file = opts.file ?? '<checkpoint>';
  const names = Object.keys(flat.tensors);
  const source = opts.source ?? detectSource(names);
  if (source === undefined) {
    throw new McoreError(
      'E_WEIGHTS',
      `${file}: cannot tell whose weights these are (first names: ${names.slice(0, 6).join(', ')}); expected ` +
        'the MCoRe reference checkpoint (base_model, psnet_model, decoder, regressor_delta), timm regnety_002 ' +
        '(stem.conv.weight, s1.b1...) or an mcore weights file (backbone., segmenter., ...)',
    );
  }
  const specs = importSpecs(cfg, source, names);
  const problems: string[] = [];
  const values: Record<string, Float32Array> = {};
  const used = new Set<string>();
  const imported: string[] = [];
  const initialised: string[] = [];
  const rng = opts.rng ?? createRng(0);
  for (const ours of Object.keys(specs).sort()) {
    const s = specs[ours];
    const theirs = sourceName(ours, source);
    if (theirs === undefined) {
      values[ours] = initValue(s, rng);
      initialised.push(ours);
      continue;
    }
    const want = torchShape(s.shape, s.layout);
    const t = flat.tensors[theirs];
    const label = theirs === ours ? ours : `${ours} <- ${theirs}`;
    if (t === undefined) {
      problems.push(`${label}: missing (expected torch shape ${fmt(want)})`);
      continue;
    }
    used.add(theirs);
    const data = floatData(t);
    if (data === undefined) {
      problems.push(`${label}: dtype ${t.dtype} is not a float type (expected torch shape ${fmt(want)})`);
      continue;
    }
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      problems.push(`${label}: expected torch shape ${fmt(want)}, found ${fmt(t.shape)}`);
      continue;
    }
    values[ours] = fromTorchLayout(data, s.shape, s.layout);
    imported.push(ours);
  }
  if (problems.length > 0) {
    throw new McoreError(
      'E_WEIGHTS',
      `${file}: ${problems.length} of ${Object.keys(specs).length} parameters missing or mis-shaped for a ` +
        `${source} checkpoint (does the model config match the file?):\n  ${problems.join('\n  ')}`,
    );
  }
  const params = paramsFromValues(specs, values);
  const unused = names.filter((n) => !used.has(n)).sort();
  return { source, specs, params, imported, initialised, unused };
}
