/**
 * Child processes started from a small helper process instead of this one.
 *
 * Why: Node starts a child with fork(), which marks every writable page of this process copy-on-write.
 * Once ONNX Runtime's sessions hold a few hundred MB, the next inference after each fork pays a
 * page fault per touched page (measured on the full-size bundle: ~39,000 minor faults, backbone
 * 104 ms -> 280-316 ms on the run after a spawn of /bin/true, back to ~104 ms on the run after that).
 * Scoring MP4s runs ffmpeg twice per video, so every video paid it. The helper is forked once; it stays
 * small, so its own forks of ffmpeg cost nothing here. stdout and stderr come back over the IPC channel
 * (structured clone of the chunks: a copy, ~1 ms per MB).
 *
 * The helper is plain JavaScript given to `node -e`, so it runs the same from src (tsx) and from dist.
 */
import { type ChildProcess, spawn } from 'node:child_process';

/** What the helper says about one child: its output chunks, a spawn error, or its exit. */
type Reply =
  | { id: number; kind: 'stdout'; chunk: Uint8Array }
  | { id: number; kind: 'stderr'; chunk: Uint8Array }
  | { id: number; kind: 'error'; code: string | undefined; message: string }
  | { id: number; kind: 'close'; code: number | null };

interface Request {
  id: number;
  bin: string;
  args: string[];
}

const HELPER_SOURCE = `
const { spawn } = require('node:child_process');
const children = new Map();
process.on('message', (m) => {
  if (m.kill !== undefined) { children.get(m.kill)?.kill('SIGKILL'); return; }
  const child = spawn(m.bin, m.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.set(m.id, child);
  child.stdout.on('data', (chunk) => process.send({ id: m.id, kind: 'stdout', chunk }));
  child.stderr.on('data', (chunk) => process.send({ id: m.id, kind: 'stderr', chunk }));
  child.on('error', (e) => process.send({ id: m.id, kind: 'error', code: e.code, message: e.message }));
  child.on('close', (code) => { children.delete(m.id); process.send({ id: m.id, kind: 'close', code }); });
});
process.on('disconnect', () => { for (const c of children.values()) c.kill('SIGKILL'); process.exit(0); });
`;

/** One child started through the helper: call `kill` to stop it early. */
export interface SpawnedChild {
  /** Resolves with the exit code (null when killed by a signal); rejects with the spawn error. */
  closed: Promise<number | null>;
  kill(): void;
}

export interface SpawnHandlers {
  onStdout(chunk: Buffer): void;
  onStderr(chunk: Buffer): void;
}

interface Pending {
  handlers: SpawnHandlers;
  resolve(code: number | null): void;
  reject(e: NodeJS.ErrnoException): void;
}

let helper: ChildProcess | undefined;
let nextId = 1;
const pending = new Map<number, Pending>();

function failAll(message: string): void {
  helper = undefined;
  for (const [id, p] of pending) {
    pending.delete(id);
    p.reject(Object.assign(new Error(message), { code: 'EHELPER' }));
  }
}

function startHelper(): ChildProcess {
  const child = spawn(process.execPath, ['-e', HELPER_SOURCE], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    serialization: 'advanced',
    env: { ...process.env, NODE_OPTIONS: '' }, // no loader (e.g. tsx) needed in the helper
  });
  child.on('message', (m: Reply) => {
    const p = pending.get(m.id);
    if (!p) return;
    if (m.kind === 'stdout')
      p.handlers.onStdout(Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.length));
    else if (m.kind === 'stderr')
      p.handlers.onStderr(Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.length));
    else {
      pending.delete(m.id);
      if (m.kind === 'error') p.reject(Object.assign(new Error(m.message), { code: m.code }));
      else p.resolve(m.code);
      if (pending.size === 0) idle(child);
    }
  });
  child.on('error', (e) => failAll(`the helper process that starts ffmpeg failed: ${e.message}`));
  child.on('exit', (code, signal) => {
    if (helper === child)
      failAll(`the helper process that starts ffmpeg exited (${signal ?? `code ${code}`})`);
  });
  return child;
}

/** An idle helper keeps neither the event loop nor the process alive. */
function idle(child: ChildProcess): void {
  child.unref();
  (child as unknown as { channel?: { unref(): void } }).channel?.unref();
}

function busy(child: ChildProcess): void {
  child.ref();
  (child as unknown as { channel?: { ref(): void } }).channel?.ref();
}

/**
 * Runs `bin args` (no shell) as a child of the helper process, stdin closed; stdout and stderr chunks
 * go to `handlers` in order. The helper is started on first use and lives with this process.
 */
export function spawnViaHelper(bin: string, args: string[], handlers: SpawnHandlers): SpawnedChild {
  helper ??= startHelper();
  const h = helper;
  busy(h);
  const id = nextId++;
  const closed = new Promise<number | null>((resolve, reject) => {
    pending.set(id, { handlers, resolve, reject });
  });
  h.send({ id, bin, args } satisfies Request);
  return { closed, kill: () => h.connected && h.send({ kill: id }) };
}

/** The helper's process id (undefined before first use): for tests that check who started a child. */
export function helperPid(): number | undefined {
  return helper?.pid;
}
