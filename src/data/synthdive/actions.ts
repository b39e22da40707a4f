/**
 * SynthDive action types, named like FINA dive numbers: group digit (1 forward, 2 back, 4 inward),
 * a 0 (no flying phase), the number of half somersaults (3, 5, 7 = 1.5, 2.5, 3.5 somersaults) and
 * the body position letter (b pike, c tuck). 3 groups x 3 rotations x 2 positions = 18 types.
 *
 * How each factor shows in the video:
 *   - group: take-off motion (forward divers walk and hurdle facing the water; back and inward
 *     divers stand backwards at the tip and bounce) and rotation sense in flight (forward and back
 *     turn the head away from the board, inward toward it); the kind lean before release differs too.
 *   - rotations: rotation speed in flight (N half turns during the flight stage).
 *   - position: body shape in flight (tuck: hips and knees folded into a ball; pike: hips folded,
 *     legs straight, an elongated wedge).
 *
 * Degree of difficulty (DD) = BASE[N] + GROUP[g] + POSITION[p], in [1.5, 3.6]: more rotations add
 * most, back and inward take-offs and the pike position add a little. SynthDive's own table, not
 * FINA's (which also depends on board height).
 */

export type DiveGroup = 'forward' | 'back' | 'inward';
export type BodyPosition = 'tuck' | 'pike';
export type HalfSomersaults = 3 | 5 | 7;

export interface ActionType {
  /** Dive number, e.g. '105c'. */
  name: string;
  group: DiveGroup;
  halfSomersaults: HalfSomersaults;
  position: BodyPosition;
  difficulty: number;
}

const GROUP_DIGIT: Record<DiveGroup, number> = { forward: 1, back: 2, inward: 4 };
const POSITION_LETTER: Record<BodyPosition, string> = { pike: 'b', tuck: 'c' };

const DD_BASE: Record<HalfSomersaults, number> = { 3: 1.5, 5: 2.3, 7: 3.0 };
const DD_GROUP: Record<DiveGroup, number> = { forward: 0, back: 0.3, inward: 0.2 };
const DD_POSITION: Record<BodyPosition, number> = { tuck: 0, pike: 0.3 };

/** Degree of difficulty of a dive, rounded to 0.1 as FINA tables are. */
export function difficultyOf(
  group: DiveGroup,
  halfSomersaults: HalfSomersaults,
  position: BodyPosition,
): number {
  const dd = DD_BASE[halfSomersaults] + DD_GROUP[group] + DD_POSITION[position];
  return Math.round(dd * 10) / 10;
}

function buildActionTypes(): ActionType[] {
  const out: ActionType[] = [];
  for (const group of ['forward', 'back', 'inward'] as const) {
    for (const halfSomersaults of [3, 5, 7] as const) {
      for (const position of ['pike', 'tuck'] as const) {
        out.push({
          name: `${GROUP_DIGIT[group]}0${halfSomersaults}${POSITION_LETTER[position]}`,
          group,
          halfSomersaults,
          position,
          difficulty: difficultyOf(group, halfSomersaults, position),
        });
      }
    }
  }
  return out;
}

/** All 18 SynthDive action types, ordered by dive number. */
export const ACTION_TYPES: readonly ActionType[] = Object.freeze(buildActionTypes());

/**
 * Rotation sense in the body frame: +1 rotates toward the diver's front (forward, inward), -1
 * toward the back (back dives). Forward and back dives both turn the head away from the board.
 */
export function rotationSign(group: DiveGroup): 1 | -1 {
  return group === 'back' ? -1 : 1;
}

/** +1: the diver faces the water (forward); -1: faces the board (back, inward). */
export function facingOf(group: DiveGroup): 1 | -1 {
  return group === 'forward' ? 1 : -1;
}
