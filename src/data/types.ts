/**
 * The dataset API every staged AQA dataset implements (SynthDive, FineDiving, manifests): a list of
 * clips with their action type, difficulty, judge scores and stage transitions, plus frame access.
 * Training and evaluation code sees only this interface.
 */

/** One clip (one performed action) of a staged dataset. */
export interface ClipInfo {
  /** Unique key within the dataset. */
  key: string;
  /** Action type (a dive number such as '107b'); exemplars share the query's type (spec section 4). */
  actionType: string;
  /** Degree of difficulty of the action type. */
  difficulty: number;
  /** The final score (for diving: difficulty x trimmed sum of judge scores). */
  score: number;
  /** Every judge's score, in panel order (before any trimming). */
  judgeScores: number[];
  numFrames: number;
  /**
   * K-1 transition frames in [1, numFrames), strictly increasing: absolute clip frame indices of the
   * first frame of stage k+1. Frames [0, t0) belong to stage 1, [t0, t1) to stage 2, and so on.
   */
  transitions: number[];
  split: 'train' | 'test';
  /**
   * Hidden quality of each stage in [0, 1], known only for synthetic data (SynthDive); the optional
   * auxiliary loss `loss.qualityWeight` (backbone pretraining) regresses it. Absent for real data.
   */
  stageQualities?: number[];
}

/** One RGB frame, row-major, 3 bytes per pixel (length width * height * 3). */
export interface Frame {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface StagedDataset {
  name: string;
  /** Names of the K stages, in order (diving: take-off, flight, entry). */
  stageNames: string[];
  clips: ClipInfo[];
  /** Renders/loads frame `index` (0-based within the clip). */
  loadFrame(key: string, index: number): Promise<Frame>;
}

/**
 * Largest magnitude of a score or judge score accepted anywhere (manifests, exemplar banks): far beyond
 * any sport's scale, and small enough that squared errors stay finite in float32 (a score of 1e300
 * trains to NaN).
 */
export const MAX_SCORE = 10_000;
