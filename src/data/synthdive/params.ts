/**
 * The per-clip parameter record of SynthDive and how it is drawn. Everything a frame shows is a pure
 * function of this record and the frame index (see choreography.ts and render.ts), so two records
 * that differ in one field give two videos that differ only where that field acts.
 *
 * Fields fall in four groups, drawn from independent random streams:
 *   - timeline: clip length 60-140 frames; background frames before and after the action; the action
 *     split into take-off, flight, entry, each 15-50% of the action (integer frame counts); in the
 *     4-stage variant into take-off, somersault, come-out, entry, each 12-40%;
 *   - quality: the hidden stage qualities [q_takeoff, q_flight, q_entry] (4 stages: [q_takeoff,
 *     q_somersault, q_comeout, q_entry]) in [0, 1], correlated through a per-clip skill (see
 *     sampleQualities); they drive the judges;
 *   - style: how this diver performs that does not affect the score (flight apex, travel, lean and
 *     wobble signs and phases, splash droplet directions);
 *   - nuisance: camera offset and zoom, figure colour and size, background, water and board colours,
 *     lighting and pixel noise; they never affect the score.
 */
import type { Rng } from '../../rng.ts';
import type { ActionType } from './actions.ts';

export type Rgb = [number, number, number];

export interface DiveStyle {
  /** Position of the flight apex as a fraction of the flight (0.18-0.3). */
  apexAt: number;
  /** Horizontal travel from release to entry, in body heights (0.5-1.0). */
  travel: number;
  /** Direction of the take-off lean error (+1 toward the diver's front, -1 back). */
  leanSign: 1 | -1;
  /** Flight wobble: cycles per flight (1.5-3) and phase. */
  wobbleCycles: number;
  wobblePhase: number;
  /** Direction of the entry angle error (+1 over-rotated, -1 short). */
  entrySign: 1 | -1;
  /** Splash droplets: launch angle from vertical (radians) and relative speed. */
  dropletAngles: number[];
  dropletSpeeds: number[];
}

export interface Nuisance {
  /** Camera offset in body heights and zoom factor (view height = 2.3 body heights x zoom). */
  cameraDx: number;
  cameraDy: number;
  zoom: number;
  /** Figure size relative to the standard diver. */
  figureScale: number;
  figureColor: Rgb;
  headColor: Rgb;
  /** Vertical background gradient (screen space), top and bottom colour. */
  backgroundTop: Rgb;
  backgroundBottom: Rgb;
  waterColor: Rgb;
  boardColor: Rgb;
  towerColor: Rgb;
  /** Global brightness multiplier and left-to-right lighting slope. */
  brightness: number;
  lightSlope: number;
  /** Pixel noise amplitude in 8-bit levels (uniform +-amplitude) and its hash seed. */
  noiseAmplitude: number;
  noiseSeed: number;
  /** Phase of the calm water surface wave. */
  wavePhase: number;
}

export interface SynthDiveClipParams {
  key: string;
  action: ActionType;
  numFrames: number;
  /** First frame of the take-off (frames before it are background: the diver stands still). */
  actionStart: number;
  /** First frame of each stage after the take-off: the flight and the entry (4 stages: the somersault, the come-out and the entry). */
  transitions: number[];
  /** First frame after the entry (frames from here on are background: water settling). */
  actionEnd: number;
  /** Hidden stage qualities, one per stage, each in [0, 1]: [q_takeoff, q_flight, q_entry] (4 stages: [q_takeoff, q_somersault, q_comeout, q_entry]). */
  quality: number[];
  style: DiveStyle;
  nuisance: Nuisance;
}

export interface Timeline {
  numFrames: number;
  actionStart: number;
  transitions: number[];
  actionEnd: number;
}

/** Stages of a SynthDive clip: 3 (take-off, flight, entry) or 4 (take-off, somersault, come-out, entry). */
export type SynthDiveStages = 3 | 4;

/** Bounds of the timeline: clip length and the share of each stage in the action. */
export const CLIP_FRAMES = { min: 60, max: 140 } as const;
export const STAGE_SHARE = { min: 0.15, max: 0.5 } as const;
/** The same for the 4-stage variant. */
export const STAGE_SHARE_4 = { min: 0.12, max: 0.4 } as const;

const between = (rng: Rng, lo: number, hi: number): number => lo + (hi - lo) * rng.next();
const sign = (rng: Rng): 1 | -1 => (rng.next() < 0.5 ? -1 : 1);

/**
 * Draws a clip timeline: background, the stages, background. The 3-stage draws are those of the first
 * SynthDive (the shipped weights were trained on them); 4 stages draw one more length.
 */
export function sampleTimeline(rng: Rng, stages: SynthDiveStages = 3): Timeline {
  const numFrames = CLIP_FRAMES.min + rng.int(CLIP_FRAMES.max - CLIP_FRAMES.min + 1);
  const pre = Math.max(3, Math.round(numFrames * between(rng, 0.05, 0.15)));
  const post = Math.max(3, Math.round(numFrames * between(rng, 0.05, 0.12)));
  const n = numFrames - pre - post;
  const share = stages === 3 ? STAGE_SHARE : STAGE_SHARE_4;
  const ok = (len: number) => len >= share.min * n && len <= share.max * n;
  for (;;) {
    const lengths: number[] = [];
    for (let k = 0; k < stages - 1; k++) lengths.push(Math.round(n * between(rng, share.min, share.max)));
    lengths.push(n - lengths.reduce((a, b) => a + b, 0));
    if (lengths.every(ok)) {
      const transitions: number[] = [];
      let at = pre;
      for (const len of lengths.slice(0, -1)) transitions.push((at += len));
      return { numFrames, actionStart: pre, transitions, actionEnd: pre + n };
    }
  }
}

/**
 * Stage qualities q_s = (skill + u_s) / 2 with skill, u_s ~ U(0, 1): each stage in [0, 1]
 * (triangular), stages correlated 0.5 through the diver's skill, as good divers tend to do every
 * stage well.
 */
export function sampleQualities(rng: Rng, stages: SynthDiveStages = 3): number[] {
  const skill = rng.next();
  return Array.from({ length: stages }, () => (skill + rng.next()) / 2);
}

const DROPLETS = 6;

export function sampleStyle(rng: Rng): DiveStyle {
  const dropletAngles: number[] = [];
  const dropletSpeeds: number[] = [];
  for (let i = 0; i < DROPLETS; i++) {
    dropletAngles.push(between(rng, -0.9, 0.9));
    dropletSpeeds.push(between(rng, 0.6, 1.2));
  }
  return {
    apexAt: between(rng, 0.18, 0.3),
    travel: between(rng, 0.5, 1.0),
    leanSign: sign(rng),
    wobbleCycles: between(rng, 1.5, 3),
    wobblePhase: between(rng, 0, 2 * Math.PI),
    entrySign: sign(rng),
    dropletAngles,
    dropletSpeeds,
  };
}

function hsv(h: number, s: number, v: number): Rgb {
  const f = (n: number) => {
    const k = (n + h * 6) % 6;
    return v - v * s * Math.max(0, Math.min(k, 4 - k, 1));
  };
  return [f(5), f(3), f(1)];
}

const luminance = (c: Rgb): number => 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];

/** The nuisance of a clip shot in standard conditions (used when nuisance is switched off). */
export function canonicalNuisance(): Nuisance {
  return {
    cameraDx: 0,
    cameraDy: 0,
    zoom: 1,
    figureScale: 1,
    figureColor: [0.85, 0.2, 0.15],
    headColor: [0.95, 0.8, 0.65],
    backgroundTop: [0.55, 0.65, 0.8],
    backgroundBottom: [0.75, 0.8, 0.85],
    waterColor: [0.15, 0.45, 0.7],
    boardColor: [0.9, 0.88, 0.8],
    towerColor: [0.5, 0.5, 0.52],
    brightness: 1,
    lightSlope: 0,
    noiseAmplitude: 0,
    noiseSeed: 0,
    wavePhase: 0,
  };
}

/** Random shooting conditions; the figure keeps a luminance contrast of >= 0.2 to the background. */
export function sampleNuisance(rng: Rng): Nuisance {
  const backgroundTop = hsv(rng.next(), between(rng, 0.05, 0.35), between(rng, 0.35, 0.9));
  const backgroundBottom = hsv(rng.next(), between(rng, 0.05, 0.35), between(rng, 0.35, 0.9));
  const bgLum = (luminance(backgroundTop) + luminance(backgroundBottom)) / 2;
  let figureColor = hsv(rng.next(), between(rng, 0.55, 0.95), between(rng, 0.3, 1));
  const lum = luminance(figureColor);
  if (Math.abs(lum - bgLum) < 0.2) {
    const target = bgLum > 0.5 ? bgLum - 0.3 : bgLum + 0.3;
    const k = Math.max(0, target) / Math.max(lum, 1e-3);
    figureColor = figureColor.map((c) => Math.min(1, c * k)) as Rgb;
  }
  return {
    cameraDx: between(rng, -0.2, 0.2),
    cameraDy: between(rng, -0.15, 0.15),
    zoom: between(rng, 0.85, 1.15),
    figureScale: between(rng, 0.85, 1.15),
    figureColor,
    headColor: hsv(between(rng, 0.03, 0.1), between(rng, 0.2, 0.6), between(rng, 0.45, 0.95)),
    backgroundTop,
    backgroundBottom,
    waterColor: hsv(between(rng, 0.48, 0.62), between(rng, 0.4, 0.8), between(rng, 0.4, 0.75)),
    boardColor: hsv(between(rng, 0.05, 0.15), between(rng, 0, 0.2), between(rng, 0.75, 0.95)),
    towerColor: hsv(rng.next(), between(rng, 0, 0.15), between(rng, 0.3, 0.6)),
    brightness: between(rng, 0.75, 1.2),
    lightSlope: between(rng, -0.15, 0.15),
    noiseAmplitude: between(rng, 0, 8),
    noiseSeed: rng.int(2 ** 31),
    wavePhase: between(rng, 0, 2 * Math.PI),
  };
}
