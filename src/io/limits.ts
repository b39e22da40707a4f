/**
 * Resource limits of the binary readers (pickle, torch zip/.pth, .npy, safetensors): a hostile or
 * damaged file of a few bytes must be refused with a clear error, never hang or exhaust memory.
 *
 *   - nesting depth of a pickle's values (and of an .npy header) at most `maxDepth` (default 1000;
 *     environment MCORE_MAX_DEPTH);
 *   - a pickle's value, expanded as a tree (a sub-structure shared through the memo counts once per
 *     use, which is what any walk over it costs), at most `maxObjects` nodes (default 10^7;
 *     MCORE_MAX_OBJECTS); reference cycles are refused;
 *   - the bytes a file decodes to (inflated zip members, dense copies of tensors and arrays) at most
 *     64 x the file's size, at least 64 MiB and never more than 4 GiB; MCORE_MAX_DECODED_BYTES sets
 *     the limit outright (in bytes) for a trusted file that needs more.
 *
 * Each error names the limit and the environment variable that raises it. Limits are read from the
 * environment when a reader starts (no module state); readers also take them as options.
 */
import { McoreError, type McoreErrorCode } from '../errors.ts';

export interface ReadLimits {
  /** Deepest nesting of containers (default 1000). */
  maxDepth: number;
  /** Most nodes of a pickle's value expanded as a tree (default 10^7). */
  maxObjects: number;
  /** Most bytes a file may decode to; undefined: 64 x the file's size, within [64 MiB, 4 GiB]. */
  maxDecodedBytes?: number;
}

export const DEFAULT_MAX_DEPTH = 1000;
export const DEFAULT_MAX_OBJECTS = 10_000_000;
/** Decoded bytes allowed per byte of input, and the floor and ceiling of that budget. */
export const DECODED_BYTES_PER_INPUT_BYTE = 64;
export const MIN_DECODED_BYTES = 64 * 1024 ** 2;
export const MAX_DECODED_BYTES = 4 * 1024 ** 3;

/** The environment variable of each limit, named in errors. */
export const LIMIT_ENV = {
  maxDepth: 'MCORE_MAX_DEPTH',
  maxObjects: 'MCORE_MAX_OBJECTS',
  maxDecodedBytes: 'MCORE_MAX_DECODED_BYTES',
} as const;

function envLimit(name: string, env: NodeJS.ProcessEnv): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new McoreError('E_CONFIG', `${name}=${raw}: expected a positive integer; unset it for the default`);
  }
  return n;
}

/** The limits in force: `given` over the environment over the defaults. */
export function resolveLimits(
  given: Partial<ReadLimits> = {},
  env: NodeJS.ProcessEnv = process.env,
): ReadLimits {
  const decoded = given.maxDecodedBytes ?? envLimit(LIMIT_ENV.maxDecodedBytes, env);
  return {
    maxDepth: given.maxDepth ?? envLimit(LIMIT_ENV.maxDepth, env) ?? DEFAULT_MAX_DEPTH,
    maxObjects: given.maxObjects ?? envLimit(LIMIT_ENV.maxObjects, env) ?? DEFAULT_MAX_OBJECTS,
    ...(decoded !== undefined ? { maxDecodedBytes: decoded } : {}),
  };
}

/** The decoded-bytes budget of an input of `inputBytes` bytes under `limits` (module doc). */
export function decodedBytesLimit(limits: ReadLimits, inputBytes: number): number {
  if (limits.maxDecodedBytes !== undefined) return limits.maxDecodedBytes;
  return Math.min(MAX_DECODED_BYTES, Math.max(MIN_DECODED_BYTES, DECODED_BYTES_PER_INPUT_BYTE * inputBytes));
}

/** The line that every limit error ends with: which limit, and how to raise it. */
export function limitHint(limit: keyof ReadLimits, value: number): string {
  return `limit ${value}; if you trust the file, raise it with the environment variable ${LIMIT_ENV[limit]}`;
}

/**
 * Counts the bytes a reader decodes from one file against its budget; `charge` throws `code` naming
 * the file, what was being decoded and the limit before anything is allocated.
 */
export class DecodeBudget {
  readonly limit: number;
  used = 0;
  constructor(
    readonly file: string,
    readonly code: McoreErrorCode,
    limits: ReadLimits,
    readonly inputBytes: number,
  ) {
    this.limit = decodedBytesLimit(limits, inputBytes);
  }

  /** Charges `bytes` for `what`; throws when the file's decoded total would pass the limit. */
  charge(bytes: number, what: string): void {
    if (!(bytes >= 0) || this.used + bytes > this.limit) {
      throw new McoreError(
        this.code,
        `${this.file}: ${what} would decode to ${bytes} bytes (${this.used + bytes} in all), more than ` +
          `a file of ${this.inputBytes} bytes may decode to (${limitHint('maxDecodedBytes', this.limit)})`,
      );
    }
    this.used += bytes;
  }
}
