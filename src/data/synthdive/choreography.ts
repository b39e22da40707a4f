/**
 * SynthDive choreography: where the diver, board, splash, water and camera are at a given frame.
 * World units are body heights (a standing diver of figureScale 1 is 1 unit tall), y points up; the
 * board's top surface is y = 0 with its tip at x = 0, the water surface is at y = WATER_Y.
 *
 * Each stage quality acts only inside its stage (frames [t_k, t_k+1)): the take-off ends in a fixed
 * release state (straight body, arms up, at the release point), the flight ends in a fixed entry
 * state (straight, head down, hands touching the water), and the entry's splash and the underwater
 * figure are gone when the entry stage ends. The camera path depends on timeline, style and nuisance
 * only. So two clips that differ only in q_flight have identical frames outside the flight, etc.
 *
 *   take-off (q_takeoff): hurdle / bounce height, board depression, arm-swing timing, body lean
 *                         (held through the whole take-off);
 *   flight (q_flight):    tightness of the tuck or pike, arms off the legs, wobble of the rotation;
 *   entry (q_entry):      body angle at entry, splash size.
 *
 * The 4-stage variant splits the flight in two, on the same ballistic path and rotation:
 *   somersault (q_somersault): tightness of the tuck or pike and wobble of the rotation; it hands over
 *                         in a standard tuck or pike (STANDARD_TIGHT), arms on the legs;
 *   come-out (q_comeout): when the body opens from that tuck or pike into the straight line (early and
 *                         crisp, or late with a break at the hips, the rotation off and the arms late),
 *                         ending in the same fixed entry state as the flight.
 * The cues are sized to be seen at the demo's 32 x 32 pixels and 16 sampled frames: measured as the
 * mean absolute pixel difference between q_s = 0 and q_s = 1 over the sampled frames of stage s
 * (90 clips): take-off 5.5, flight 3.1, entry 8.8 levels of 255.
 */
import { facingOf, rotationSign } from './actions.ts';
import type { SynthDiveClipParams } from './params.ts';

export const WATER_Y = -5;
export const BOARD_LEFT = -3;
export const BOARD_THICKNESS = 0.1;
/** The striped tower under the board: x range. */
export const TOWER_X: readonly [number, number] = [-1.6, -0.75];

const SHIN = 0.26;
const THIGH = 0.26;
const TORSO = 0.3;
const NECK = 0.1;
const ARM = 0.32;
const LEG = SHIN + THIGH;
/** Capsule radii of shin, thigh, torso, arm and the head radius, for figureScale 1. */
export const BODY_RADII = { shin: 0.075, thigh: 0.09, torso: 0.11, arm: 0.065, head: 0.1 } as const;

/** Mean horizontal camera position; the view is 2.3 body heights tall (x zoom). */
const CAMERA_X = 0.1;
const CAMERA_ABOVE_HIP = 0.2;
export const VIEW_HEIGHT = 2.3;

export interface BodyPose {
  /** Rotation toward the diver's front (radians, 0 = upright). */
  alpha: number;
  /** Hip flexion (0 straight, > 0 legs folded toward the front). */
  hipFlex: number;
  /** Knee flexion (0 straight, > 0 shin folded backward). */
  kneeFlex: number;
  /** Arm angle from hanging down (0) through forward to overhead (pi). */
  arm: number;
}

/** Joint positions, world coordinates. */
export interface Joints {
  foot: [number, number];
  knee: [number, number];
  hip: [number, number];
  shoulder: [number, number];
  head: [number, number];
  hand: [number, number];
}

export interface FigureState {
  joints: Joints;
  scale: number;
  /** Opacity of the parts below the water surface (0 hides them). */
  underwaterOpacity: number;
}

export interface SplashState {
  x: number;
  halfWidth: number;
  height: number;
}

export interface Droplet {
  x: number;
  y: number;
  r: number;
}

export interface SceneState {
  /** Camera centre (world) and view height (world units spanning the frame height). */
  camera: { x: number; y: number; viewHeight: number };
  /** Depression of the board tip (world units). */
  boardDepression: number;
  figure: FigureState | null;
  splash: SplashState | null;
  droplets: Droplet[];
  /** Water surface: calm wave time (frame index) and the entry ripple. */
  surface: { frame: number; rippleX: number; rippleAmplitude: number; rippleTime: number };
}

export function smoothstep(a: number, b: number, x: number): number {
  const t = Math.min(1, Math.max(0, (x - a) / (b - a)));
  return t * t * (3 - 2 * t);
}

/** Board top surface height at x for a tip depression d. */
export function boardTop(x: number, d: number): number {
  if (x < BOARD_LEFT || x > 0) return 0;
  const r = (x - BOARD_LEFT) / -BOARD_LEFT;
  return -d * r * r;
}

/** Forward kinematics: joints of `pose` with the hip at `hip`, facing +1 (water) or -1 (board). */
export function bodyJoints(pose: BodyPose, hip: [number, number], facing: number, scale: number): Joints {
  const ca = Math.cos(pose.alpha);
  const sa = Math.sin(pose.alpha);
  // body frame (front +x, up +y) -> rotate forward by alpha -> mirror by facing -> translate
  const place = (bx: number, by: number): [number, number] => [
    hip[0] + facing * scale * (bx * ca + by * sa),
    hip[1] + scale * (-bx * sa + by * ca),
  ];
  const kx = THIGH * Math.sin(pose.hipFlex);
  const ky = -THIGH * Math.cos(pose.hipFlex);
  const shin = pose.hipFlex - pose.kneeFlex;
  return {
    foot: place(kx + SHIN * Math.sin(shin), ky - SHIN * Math.cos(shin)),
    knee: place(kx, ky),
    hip: [hip[0], hip[1]],
    shoulder: place(0, TORSO),
    head: place(0, TORSO + NECK),
    hand: place(ARM * Math.sin(pose.arm), TORSO - ARM * Math.cos(pose.arm)),
  };
}

/** Joints of `pose` placed so that the foot is at `foot`. */
function standOn(pose: BodyPose, foot: [number, number], facing: number, scale: number): Joints {
  const rel = bodyJoints(pose, [0, 0], facing, scale);
  return bodyJoints(pose, [foot[0] - rel.foot[0], foot[1] - rel.foot[1]], facing, scale);
}

const STRAIGHT_ARMS_UP: BodyPose = { alpha: 0, hipFlex: 0, kneeFlex: 0, arm: Math.PI };

/** Tightness of the tuck or pike in which the 4-stage variant's somersault hands over to the come-out. */
const STANDARD_TIGHT = 0.6;

/** Fixed points of a clip's choreography (functions of action, style and figure scale only). */
interface Anchors {
  facing: 1 | -1;
  rotSign: 1 | -1;
  standFootX: number;
  tipFootX: number;
  /** Hip at release (first flight frame) and at entry (first entry frame). */
  release: [number, number];
  entry: [number, number];
  /** Flight hip path y = release.y + a u - b u^2. */
  a: number;
  b: number;
  /** Body rotation at entry (head down). */
  alphaEntry: number;
}

function anchors(p: SynthDiveClipParams): Anchors {
  const sc = p.nuisance.figureScale;
  const forward = p.action.group === 'forward';
  const tipFootX = forward ? -0.1 : -0.06;
  const release: [number, number] = [tipFootX + 0.12, LEG * sc + 0.15];
  const entry: [number, number] = [release[0] + p.style.travel, WATER_Y + (TORSO + ARM) * sc];
  const b = (release[1] - entry[1]) / (1 - 2 * p.style.apexAt);
  const rotSign = rotationSign(p.action.group);
  return {
    facing: facingOf(p.action.group),
    rotSign,
    standFootX: forward ? -0.55 : tipFootX,
    tipFootX,
    release,
    entry,
    a: 2 * b * p.style.apexAt,
    b,
    alphaEntry: rotSign * p.action.halfSomersaults * Math.PI,
  };
}

/** Take-off, u in [0, 1): arm swing, hurdle (forward) or bounce, board press, extension. */
function takeoff(p: SynthDiveClipParams, an: Anchors, u: number): { joints: Joints; depression: number } {
  const q = p.quality[0];
  const sc = p.nuisance.figureScale;
  const hurdle = (0.1 + 0.75 * q) * sc;
  const press = 0.06 + 0.3 * q;
  const lag = 0.2 * (1 - q);
  const lean = p.style.leanSign * 0.6 * (1 - q) * smoothstep(0, 0.1, u) * (1 - smoothstep(0.85, 1, u));
  const pose: BodyPose = {
    alpha: lean,
    hipFlex: 0,
    kneeFlex: 0,
    arm: Math.PI * smoothstep(0.05 + lag, 0.3 + lag, u),
  };
  let foot: [number, number];
  let depression = 0;
  if (u < 0.25) {
    const crouch = Math.sin((Math.PI * u) / 0.25);
    pose.kneeFlex = 0.7 * crouch;
    pose.hipFlex = 0.35 * crouch;
    foot = [an.standFootX, 0];
  } else if (u < 0.6) {
    const v = (u - 0.25) / 0.35;
    foot = [
      an.standFootX + (an.tipFootX - an.standFootX) * smoothstep(0, 1, v),
      hurdle * Math.sin(Math.PI * v),
    ];
  } else if (u < 0.85) {
    const s = Math.sin((Math.PI * (u - 0.6)) / 0.25);
    depression = press * s;
    pose.kneeFlex = 1.1 * s;
    pose.hipFlex = 0.55 * s;
    pose.arm = Math.PI - 1.5 * s;
    foot = [an.tipFootX, boardTop(an.tipFootX, depression)];
  } else {
    const w = (u - 0.85) / 0.15;
    pose.alpha += an.rotSign * 0.25 * Math.sin(Math.PI * w);
    pose.arm = Math.PI;
    foot = [an.tipFootX + (an.release[0] - an.tipFootX) * w, (an.release[1] - LEG * sc) * w];
  }
  return { joints: standOn(pose, foot, an.facing, sc), depression };
}

/** Flight, u in [0, 1): ballistic hip path, N half somersaults, tuck or pike in the middle. */
function flight(p: SynthDiveClipParams, an: Anchors, u: number): Joints {
  const q = p.quality[1];
  return tuckedFlight(p, an, u, {
    tight: 0.2 + 0.8 * q,
    shape: smoothstep(0, 0.15, u) * (1 - smoothstep(0.8, 0.97, u)),
    wobble: wobbleAt(p, q, u),
    armError: 1.4 * (1 - q),
  });
}

/** The fraction of the flight's rotation done at flight fraction u (0 -> 0, 1 -> 1). */
function turnAt(u: number): number {
  return u - (0.6 * Math.sin(2 * Math.PI * u)) / (2 * Math.PI);
}

/** Hip position at flight fraction u (the ballistic path from release to entry). */
function flightHip(p: SynthDiveClipParams, an: Anchors, u: number): [number, number] {
  return [an.release[0] + p.style.travel * u, an.release[1] + an.a * u - an.b * u * u];
}

/** Rotation wobble of quality q at fraction x of the stage it spans (0 at both ends). */
function wobbleAt(p: SynthDiveClipParams, q: number, x: number): number {
  return (
    1.2 *
    (1 - q) *
    Math.sin(Math.PI * x) *
    Math.sin(2 * Math.PI * p.style.wobbleCycles * x + p.style.wobblePhase)
  );
}

/**
 * The body on the flight path at flight fraction u, rotating, folded into its tuck or pike by `shape`
 * (0 straight, 1 folded) with `tight`ness, the rotation off by `wobble`, the arms off the legs by
 * `armError` (scaled by the fold) and behind the line by `armLag`, the hips broken by `hipBreak`.
 */
function tuckedFlight(
  p: SynthDiveClipParams,
  an: Anchors,
  u: number,
  o: { tight: number; shape: number; wobble: number; armError: number; armLag?: number; hipBreak?: number },
): Joints {
  const tuck = p.action.position === 'tuck';
  const pose: BodyPose = {
    alpha: an.alphaEntry * turnAt(u) + o.wobble,
    hipFlex: o.shape * (tuck ? 2.3 : 2.6) * o.tight + (o.hipBreak ?? 0),
    kneeFlex: o.shape * (tuck ? 2.5 * o.tight : 0),
    arm: Math.PI + o.shape * ((tuck ? 0.6 : 1.0) + o.armError - Math.PI) - (o.armLag ?? 0),
  };
  return bodyJoints(pose, flightHip(p, an, u), an.facing, p.nuisance.figureScale);
}

/**
 * Somersault of the 4-stage variant: u the fraction of the whole flight, v of this stage. Tightness
 * and wobble as the flight's, blended into the standard tuck or pike by the end of the stage.
 */
function somersault(p: SynthDiveClipParams, an: Anchors, u: number, v: number): Joints {
  const q = p.quality[1];
  const handOver = smoothstep(0.7, 1, v);
  return tuckedFlight(p, an, u, {
    tight: 0.2 + 0.8 * q + (STANDARD_TIGHT - 0.2 - 0.8 * q) * handOver,
    shape: smoothstep(0, 0.15, u),
    wobble: wobbleAt(p, q, v),
    armError: 1.4 * (1 - q) * (1 - handOver),
  });
}

/**
 * Come-out of the 4-stage variant: from the standard tuck or pike to the straight entry line. A good
 * come-out (q = 1) opens at 5-35% of the stage; a poor one (q = 0) at 60-90%, with a break at the hips,
 * the rotation off and the arms late, all gone by the stage's end.
 */
function comeOut(p: SynthDiveClipParams, an: Anchors, u: number, v: number): Joints {
  const q = p.quality[2];
  const start = 0.05 + 0.55 * (1 - q);
  const fault = (1 - q) * Math.sin(Math.PI * v);
  return tuckedFlight(p, an, u, {
    tight: STANDARD_TIGHT,
    shape: 1 - smoothstep(start, start + 0.3, v),
    wobble: an.rotSign * 0.5 * fault,
    armError: 0,
    armLag: fault,
    hipBreak: 0.5 * fault,
  });
}

/** Camera centre for a flight fraction u (0 before the flight, 1 after it). */
function camera(p: SynthDiveClipParams, an: Anchors, u: number): SceneState['camera'] {
  const y = an.release[1] + an.a * u - an.b * u * u;
  return {
    x: CAMERA_X + p.nuisance.cameraDx + 0.6 * p.style.travel * u,
    y: y + CAMERA_ABOVE_HIP + p.nuisance.cameraDy,
    viewHeight: VIEW_HEIGHT * p.nuisance.zoom,
  };
}

/** The scene at frame `index` of the clip (3 or 4 stages: `p.transitions` has 2 or 3 frames). */
export function sceneAt(p: SynthDiveClipParams, index: number): SceneState {
  const an = anchors(p);
  const t0 = p.transitions[0];
  // the flight (3 stages) or somersault + come-out (4 stages) span [t0, tEntry)
  const tEntry = p.transitions[p.transitions.length - 1];
  const sc = p.nuisance.figureScale;
  const surface = { frame: index, rippleX: an.entry[0], rippleAmplitude: 0, rippleTime: 0 };
  const scene: SceneState = {
    camera: camera(p, an, 0),
    boardDepression: 0,
    figure: null,
    splash: null,
    droplets: [],
    surface,
  };
  if (index < p.actionStart) {
    const pose: BodyPose = { alpha: 0, hipFlex: 0, kneeFlex: 0, arm: 0 };
    scene.figure = {
      joints: standOn(pose, [an.standFootX, 0], an.facing, sc),
      scale: sc,
      underwaterOpacity: 0,
    };
  } else if (index < t0) {
    const { joints, depression } = takeoff(p, an, (index - p.actionStart) / (t0 - p.actionStart));
    scene.figure = { joints, scale: sc, underwaterOpacity: 0 };
    scene.boardDepression = depression;
  } else if (index < tEntry) {
    const u = (index - t0) / (tEntry - t0);
    scene.camera = camera(p, an, u);
    let joints: Joints;
    if (p.transitions.length === 2) joints = flight(p, an, u);
    else {
      const t1 = p.transitions[1];
      joints =
        index < t1
          ? somersault(p, an, u, (index - t0) / (t1 - t0))
          : comeOut(p, an, u, (index - t1) / (tEntry - t1));
    }
    scene.figure = { joints, scale: sc, underwaterOpacity: 0 };
  } else {
    scene.camera = camera(p, an, 1);
    const u = (index - tEntry) / (p.actionEnd - tEntry);
    surface.rippleTime = u;
    surface.rippleAmplitude = (0.06 * smoothstep(0.1, 0.4, u)) / (1 + u);
    if (u < 1) entry(p, an, u, scene);
  }
  return scene;
}

/** Entry, u in [0, 1): the diver slides in at an angle, the splash rises and falls. */
function entry(p: SynthDiveClipParams, an: Anchors, u: number, scene: SceneState): void {
  const q = p.quality[p.quality.length - 1];
  const sc = p.nuisance.figureScale;
  const error = an.rotSign * p.style.entrySign * 0.6 * (1 - q) * smoothstep(0, 0.25, u);
  const pose: BodyPose = { ...STRAIGHT_ARMS_UP, alpha: an.alphaEntry + error };
  const hip: [number, number] = [an.entry[0], an.entry[1] - 2 * sc * Math.min(1, u / 0.5)];
  scene.figure = {
    joints: bodyJoints(pose, hip, an.facing, sc),
    scale: sc,
    underwaterOpacity: 0.35 * (1 - smoothstep(0.45, 0.8, u)),
  };
  const size = 0.15 + 0.85 * (1 - q);
  const envelope = smoothstep(0.03, 0.3, u) * (1 - smoothstep(0.55, 1, u));
  if (envelope > 1e-3) {
    scene.splash = {
      x: an.entry[0],
      halfWidth: (0.08 + 0.3 * size) * (0.5 + 0.5 * envelope),
      height: (0.1 + 1.1 * size) * envelope,
    };
    const tau = (u - 0.1) * 1.5;
    const v0 = 2.5 * Math.sqrt(size);
    for (let i = 0; i < p.style.dropletAngles.length && tau > 0; i++) {
      const ang = p.style.dropletAngles[i];
      const v = v0 * p.style.dropletSpeeds[i];
      const y = WATER_Y + v * Math.cos(ang) * tau - 3 * tau * tau;
      if (y > WATER_Y) {
        scene.droplets.push({
          x: an.entry[0] + v * Math.sin(ang) * tau,
          y,
          r: (0.03 + 0.03 * size) * envelope,
        });
      }
    }
  }
}
