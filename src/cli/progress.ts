/**
 * Progress drawing for the CLI (the library only reports events). On a terminal: one bar redrawn in
 * place with loss and ETA; otherwise (CI, pipes, logs): a plain line every `every` steps and at the end.
 * The ETA extrapolates the rate since the first update ('--:--' until there is one).
 */
export interface Bar {
  update(done: number, note?: string): void;
  done(note?: string): void;
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '--:--';
  const m = Math.floor(s / 60);
  const sec = Math.floor(s % 60);
  return `${m}:${String(sec).padStart(2, '0')}`;
}

export function createBar(
  label: string,
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
  every = Math.max(1, Math.ceil(total / 10)),
): Bar {
  const t0 = performance.now();
  const tty = Boolean(stream.isTTY) && process.env.CI === undefined;
  let last = -1;
  // The ETA is the rate since the first update applied to what is left: work done before it (clips
  // reused from a cache, epochs of a resumed run, a bar created at its first event) has no time in it.
  let first: { done: number; at: number } | undefined;
  const line = (done: number, note?: string): string => {
    const now = performance.now();
    first ??= { done, at: now };
    const elapsed = (now - t0) / 1000;
    const rate = (done - first.done) / ((now - first.at) / 1000);
    const eta = done >= total ? 0 : rate > 0 ? (total - done) / rate : Number.NaN;
    const width = 24;
    const filled = Math.round((width * done) / Math.max(1, total));
    const bar = tty ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
    return `${label} ${bar}${done}/${total} ${fmtTime(elapsed)} eta ${fmtTime(eta)}${note ? ` ${note}` : ''}`;
  };
  return {
    update(done, note) {
      first ??= { done, at: performance.now() };
      if (tty) {
        stream.write(`\r\x1b[2K${line(done, note)}`);
      } else if (done === total || done - last >= every) {
        stream.write(`${line(done, note)}\n`);
        last = done;
      }
    },
    done(note) {
      if (tty) stream.write(`\r\x1b[2K${line(total, note)}\n`);
      else if (last !== total || note) stream.write(`${line(total, note)}\n`);
    },
  };
}
