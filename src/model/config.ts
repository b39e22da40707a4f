/**
 * Model configuration as typed data. Named variants live in MODEL_VARIANTS; `mcore-regnety002` is the
 * paper's model (spec section 2), `mcore-tiny` the width used in tests and CPU demos.
 */
export interface BackboneConfig {
  /** Stem conv output channels (RegNetY-200MF: 32). */
  stemWidth: number;
  /** Output widths of stages s1..s4 (RegNetY-200MF: 24, 56, 152, 368). */
  widths: number[];
  /** Blocks per stage (RegNetY-200MF: 1, 1, 4, 7). */
  depths: number[];
  /** Channels per group of the 3x3 grouped convs (RegNetY-200MF: 8). */
  groupWidth: number;
  /** SE bottleneck = round(seRatio x block input channels) (RegNetY: 0.25). */
  seRatio: number;
  /** Wrap the first 1x1 conv of every block with a Gate Shift Module. */
  gsm: boolean;
}

export interface SegmenterConfig {
  /** Dropout after the BiGRU during training (reference: 0.5). */
  dropout: number;
}

export interface DecoderConfig {
  layers: number;
  heads: number;
  /** MLP hidden = mlpRatio x D. */
  mlpRatio: number;
}

export interface RegressorConfig {
  /** Hidden widths of the regressor MLP (reference: 256, 64). */
  hidden: number[];
}

export interface ModelConfig {
  backbone: BackboneConfig;
  segmenter: SegmenterConfig;
  decoder: DecoderConfig;
  regressor: RegressorConfig;
  /** Number of stages K (diving: 3); the segmenter predicts K-1 transitions. */
  stages: number;
  /** Tokens per stage after stage pooling (reference: 5). */
  tokensPerStage: number;
  /** Frames per video T (reference: 96). */
  frames: number;
  /** Input frame size (square), reference 112. */
  imageSize: number;
}

/** Per-frame feature width D: the last backbone stage's width. */
export function featureDim(cfg: ModelConfig): number {
  return cfg.backbone.widths[cfg.backbone.widths.length - 1];
}

export const MODEL_VARIANTS = {
  'mcore-regnety002': {
    backbone: {
      stemWidth: 32,
      widths: [24, 56, 152, 368],
      depths: [1, 1, 4, 7],
      groupWidth: 8,
      seRatio: 0.25,
      gsm: true,
    },
    segmenter: { dropout: 0.5 },
    decoder: { layers: 3, heads: 8, mlpRatio: 4 },
    regressor: { hidden: [256, 64] },
    stages: 3,
    tokensPerStage: 5,
    frames: 96,
    imageSize: 112,
  },
  'mcore-tiny': {
    backbone: {
      stemWidth: 8,
      widths: [8, 16, 24, 32],
      depths: [1, 1, 1, 1],
      groupWidth: 8,
      seRatio: 0.25,
      gsm: true,
    },
    segmenter: { dropout: 0.5 },
    decoder: { layers: 1, heads: 4, mlpRatio: 4 },
    regressor: { hidden: [16, 8] },
    stages: 3,
    tokensPerStage: 5,
    frames: 16,
    imageSize: 32,
  },
} as const satisfies Record<string, ModelConfig>;

export type ModelVariant = keyof typeof MODEL_VARIANTS;

/** A deep, mutable copy of a named variant. */
export function modelConfig(variant: ModelVariant): ModelConfig {
  return structuredClone(MODEL_VARIANTS[variant]) as ModelConfig;
}
