/**
 * Progress drawing for the CLI (the library only reports events). On a terminal: one bar redrawn in
 * place with loss and ETA; otherwise (CI, pipes, logs): a plain line every `every` steps and at the end.
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
  const line = (done: number, note?: string): string => {
    const elapsed = (performance.now() - t0) / 1000;
    const eta = done > 0 ? (elapsed / done) * (total - done) : Number.NaN;
    const width = 24;
    const filled = Math.round((width * done) / Math.max(1, total));
    const bar = tty ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
    return `${label} ${bar}${done}/${total} ${fmtTime(elapsed)} eta ${fmtTime(eta)}${note ? ` ${note}` : ''}`;
  };
  return {
    update(done, note) {
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
