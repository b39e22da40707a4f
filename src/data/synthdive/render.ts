/**
 * SynthDive rasteriser: draws a SceneState analytically (signed distances with one-pixel
 * anti-aliasing, no canvas) into an RGB byte frame. Layers, back to front: background gradient
 * (screen space), striped tower, springboard, water (darker with depth, waved surface), the diver
 * (capsules for shin, thigh, torso and arm, a disc for the head; faint below the surface), the
 * splash (a foam ellipse and droplets); then lighting (brightness, left-right slope) and uniform
 * pixel noise from a hash of (noise seed, frame, pixel), so frames are random-access deterministic.
 */
import { McoreError } from '../../errors.ts';
import type { Frame } from '../types.ts';
import {
  BOARD_LEFT,
  BOARD_THICKNESS,
  BODY_RADII,
  boardTop,
  type SceneState,
  sceneAt,
  TOWER_X,
  WATER_Y,
} from './choreography.ts';
import type { Nuisance, Rgb, SynthDiveClipParams } from './params.ts';

const FOAM: Rgb = [0.95, 0.97, 1];
const FOAM_OPACITY = 0.92;
const TOWER_STRIPE = 0.5;

function hash32(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Distance from (px, py) to the segment a-b. */
function segmentDistance(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const ex = bx - ax;
  const ey = by - ay;
  const len2 = ex * ex + ey * ey;
  const t = len2 > 0 ? Math.min(1, Math.max(0, ((px - ax) * ex + (py - ay) * ey) / len2)) : 0;
  const dx = px - ax - t * ex;
  const dy = py - ay - t * ey;
  return Math.sqrt(dx * dx + dy * dy);
}

/** Surface height of the water at x (calm wave plus the entry ripple). */
function surfaceY(x: number, s: SceneState['surface'], wavePhase: number): number {
  const d = Math.abs(x - s.rippleX);
  const ripple =
    s.rippleAmplitude > 0 ? s.rippleAmplitude * Math.cos(8 * d - 10 * s.rippleTime) * Math.exp(-d) : 0;
  return WATER_Y + 0.015 * Math.sin(3 * x + wavePhase + 0.15 * s.frame) + ripple;
}

/**
 * Draws `scene` at width x height. `frameIndex` seeds the pixel noise. Writes into `out` when given
 * (length width * height * 3).
 */
export function renderScene(
  scene: SceneState,
  nuisance: Nuisance,
  frameIndex: number,
  width: number,
  height: number,
  out?: Uint8Array,
): Frame {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new McoreError('E_INPUT', `frame size must be positive integers, found ${width}x${height}`);
  }
  const data = out ?? new Uint8Array(width * height * 3);
  if (data.length !== width * height * 3) {
    throw new McoreError(
      'E_SHAPE',
      `output buffer: expected ${width * height * 3} bytes, found ${data.length}`,
    );
  }
  const pix = scene.camera.viewHeight / height;
  const x0 = scene.camera.x - (width / 2) * pix;
  const y0 = scene.camera.y + (height / 2) * pix;
  const n = nuisance;

  const colX = new Float64Array(width);
  const colSurface = new Float64Array(width);
  const colBoard = new Float64Array(width);
  for (let i = 0; i < width; i++) {
    const x = x0 + (i + 0.5) * pix;
    colX[i] = x;
    colSurface[i] = surfaceY(x, scene.surface, n.wavePhase);
    colBoard[i] = boardTop(x, scene.boardDepression);
  }

  // figure geometry and bounding box
  const fig = scene.figure;
  let fx0 = 1;
  let fx1 = 0;
  let fy0 = 1;
  let fy1 = 0;
  let segs: number[] = [];
  let headX = 0;
  let headY = 0;
  let headR = 0;
  if (fig) {
    const j = fig.joints;
    const sc = fig.scale;
    segs = [
      ...j.foot,
      ...j.knee,
      BODY_RADII.shin * sc,
      ...j.knee,
      ...j.hip,
      BODY_RADII.thigh * sc,
      ...j.hip,
      ...j.shoulder,
      BODY_RADII.torso * sc,
      ...j.shoulder,
      ...j.hand,
      BODY_RADII.arm * sc,
    ];
    [headX, headY] = j.head;
    headR = BODY_RADII.head * sc;
    const pts = [j.foot, j.knee, j.hip, j.shoulder, j.head, j.hand];
    const margin = headR + pix;
    fx0 = Math.min(...pts.map((p) => p[0])) - margin;
    fx1 = Math.max(...pts.map((p) => p[0])) + margin;
    fy0 = Math.min(...pts.map((p) => p[1])) - margin;
    fy1 = Math.max(...pts.map((p) => p[1])) + margin;
  }
  const splash = scene.splash;
  const drops = scene.droplets;

  const noiseBase = hash32(n.noiseSeed, frameIndex);
  const amp = n.noiseAmplitude;
  let o = 0;
  for (let r = 0; r < height; r++) {
    const y = y0 - (r + 0.5) * pix;
    const g = height > 1 ? r / (height - 1) : 0.5;
    const bgR = n.backgroundTop[0] + (n.backgroundBottom[0] - n.backgroundTop[0]) * g;
    const bgG = n.backgroundTop[1] + (n.backgroundBottom[1] - n.backgroundTop[1]) * g;
    const bgB = n.backgroundTop[2] + (n.backgroundBottom[2] - n.backgroundTop[2]) * g;
    const stripe = Math.floor(y / TOWER_STRIPE) % 2 === 0 ? 1 : 0.82;
    for (let i = 0; i < width; i++) {
      const x = colX[i];
      let cr = bgR;
      let cg = bgG;
      let cb = bgB;
      let a: number;
      // tower
      const dTower = Math.max(TOWER_X[0] - x, x - TOWER_X[1], y + BOARD_THICKNESS);
      if ((a = 0.5 - dTower / pix) > 0) {
        a = Math.min(1, a);
        cr += (n.towerColor[0] * stripe - cr) * a;
        cg += (n.towerColor[1] * stripe - cg) * a;
        cb += (n.towerColor[2] * stripe - cb) * a;
      }
      // board
      const top = colBoard[i];
      const dBoard = Math.max(
        Math.abs(y - top + BOARD_THICKNESS / 2) - BOARD_THICKNESS / 2,
        BOARD_LEFT - x,
        x,
      );
      if ((a = 0.5 - dBoard / pix) > 0) {
        a = Math.min(1, a);
        cr += (n.boardColor[0] - cr) * a;
        cg += (n.boardColor[1] - cg) * a;
        cb += (n.boardColor[2] - cb) * a;
      }
      // water
      const surf = colSurface[i];
      const depth = surf - y;
      const underwater = depth > 0;
      if ((a = 0.5 + depth / pix) > 0) {
        a = Math.min(1, a);
        const shade = 1 - 0.35 * Math.min(1, Math.max(0, depth) / 1.5);
        cr += (n.waterColor[0] * shade - cr) * a;
        cg += (n.waterColor[1] * shade - cg) * a;
        cb += (n.waterColor[2] * shade - cb) * a;
      }
      // diver
      if (fig && x >= fx0 && x <= fx1 && y >= fy0 && y <= fy1) {
        const opacity = underwater ? fig.underwaterOpacity : 1;
        if (opacity > 0) {
          let d = Number.POSITIVE_INFINITY;
          for (let k = 0; k < segs.length; k += 5) {
            const dk = segmentDistance(x, y, segs[k], segs[k + 1], segs[k + 2], segs[k + 3]) - segs[k + 4];
            if (dk < d) d = dk;
          }
          if ((a = 0.5 - d / pix) > 0) {
            a = Math.min(1, a) * opacity;
            cr += (n.figureColor[0] - cr) * a;
            cg += (n.figureColor[1] - cg) * a;
            cb += (n.figureColor[2] - cb) * a;
          }
          const dh = Math.hypot(x - headX, y - headY) - headR;
          if ((a = 0.5 - dh / pix) > 0) {
            a = Math.min(1, a) * opacity;
            cr += (n.headColor[0] - cr) * a;
            cg += (n.headColor[1] - cg) * a;
            cb += (n.headColor[2] - cb) * a;
          }
        }
      }
      // splash
      if (splash) {
        const ex = (x - splash.x) / splash.halfWidth;
        const dy = y - WATER_Y;
        const ry = dy >= 0 ? splash.height : Math.max(0.06, 0.25 * splash.height);
        const ey = dy / ry;
        let d = (Math.sqrt(ex * ex + ey * ey) - 1) * Math.min(splash.halfWidth, ry);
        for (const drop of drops) {
          const dd = Math.hypot(x - drop.x, y - drop.y) - drop.r;
          if (dd < d) d = dd;
        }
        if ((a = 0.5 - d / pix) > 0) {
          a = Math.min(1, a) * FOAM_OPACITY;
          cr += (FOAM[0] - cr) * a;
          cg += (FOAM[1] - cg) * a;
          cb += (FOAM[2] - cb) * a;
        }
      }
      // lighting and noise
      const light = 255 * n.brightness * (1 + n.lightSlope * ((2 * (i + 0.5)) / width - 1));
      let vr = cr * light;
      let vg = cg * light;
      let vb = cb * light;
      if (amp > 0) {
        const h = hash32(noiseBase, r * width + i);
        vr += amp * ((h & 1023) / 511.5 - 1);
        vg += amp * (((h >>> 10) & 1023) / 511.5 - 1);
        vb += amp * (((h >>> 20) & 1023) / 511.5 - 1);
      }
      data[o++] = vr <= 0 ? 0 : vr >= 255 ? 255 : (vr + 0.5) | 0;
      data[o++] = vg <= 0 ? 0 : vg >= 255 ? 255 : (vg + 0.5) | 0;
      data[o++] = vb <= 0 ? 0 : vb >= 255 ? 255 : (vb + 0.5) | 0;
    }
  }
  return { width, height, data };
}

/** Frame `index` of the clip described by `params`, rendered at width x height (synchronous). */
export function renderFrameSync(
  params: SynthDiveClipParams,
  index: number,
  width: number,
  height: number,
  out?: Uint8Array,
): Frame {
  if (!Number.isInteger(index) || index < 0 || index >= params.numFrames) {
    throw new McoreError(
      'E_INPUT',
      `clip '${params.key}' has frames 0..${params.numFrames - 1}, frame ${index} was requested`,
    );
  }
  return renderScene(sceneAt(params, index), params.nuisance, index, width, height, out);
}

/** Promise form of renderFrameSync, matching StagedDataset.loadFrame. */
export async function renderFrame(
  params: SynthDiveClipParams,
  index: number,
  width: number,
  height: number,
): Promise<Frame> {
  return renderFrameSync(params, index, width, height);
}
