/** Probing a video with ffmpeg: frame count, frame rate, duration and size. */
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { McoreError } from '../../errors.ts';
import { ffmpegReason, runFfmpeg } from './ffmpeg.ts';

export interface VideoInfo {
  /** Absolute path of the file. */
  path: string;
  /** Readable frames of the first video stream (packets counted by a stream copy, no decoding). */
  frameCount: number;
  /** Frames per second (NTSC rates such as 29.97 restored to 30000/1001). */
  fps: number;
  /** Container duration in seconds (NaN when the container does not say). */
  duration: number;
  /** Displayed frame size (after ffmpeg's rotation by the file's display matrix). */
  width: number;
  height: number;
  codec: string;
  /** Problems ffmpeg reported that did not stop it (truncated or damaged data). */
  warnings: string[];
}

function snapFps(fps: number): number {
  const ntsc = (fps * 1001) / 1000;
  return !Number.isInteger(fps) && Math.abs(ntsc - Math.round(ntsc)) < 0.006
    ? (Math.round(ntsc) * 1000) / 1001
    : fps;
}

/** Whether the file starts with an ISO base media box (ftyp, mdat, ...): an MP4/MOV, maybe cut short. */
async function startsLikeMp4(file: string): Promise<boolean> {
  try {
    const fh = await open(file, 'r');
    try {
      const head = Buffer.alloc(8);
      const { bytesRead } = await fh.read(head, 0, 8, 0);
      return (
        bytesRead === 8 && ['ftyp', 'mdat', 'wide', 'free', 'skip'].includes(head.toString('latin1', 4, 8))
      );
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}

/**
 * Probes a video with one fast stream-copy pass of ffmpeg (`-c copy -f null`): frame count, fps,
 * duration, size. Not a video, no video stream, a missing or unreadable file: McoreError('E_INPUT') with
 * the file name and ffmpeg's one-line reason. A truncated file whose start is readable gives the readable
 * frames and a warning. An MP4 cut before its index (moov atom missing) has no readable frame: E_INPUT
 * saying so (nothing to salvage).
 */
export async function probeVideo(path: string): Promise<VideoInfo> {
  const abs = resolve(path);
  const run = await runFfmpeg([
    ...['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'level+info', '-i', abs],
    ...['-map', '0:v:0', '-c', 'copy', '-f', 'null', '-progress', 'pipe:1', '-'],
  ]);
  const errors = run.stderr.split(/\r?\n/).filter((l) => /\[(error|fatal|panic)\]/.test(l));
  const frameCount = Number([...run.stdout.matchAll(/^frame=(\d+)/gm)].pop()?.[1] ?? 0);
  const input = run.stderr.split(/^\[info\] Output #0/m)[0];
  const stream = /Stream #\d+:\d+.*?: Video: (\w+).*$/m.exec(input);
  if (/moov atom not found/i.test(run.stderr) && (await startsLikeMp4(abs))) {
    // An MP4 or MOV whose index (written last unless faststart) never made it to disk: the frames may
    // be there, but nothing says where one ends and the next begins.
    throw new McoreError(
      'E_INPUT',
      `${abs}: moov atom missing (ffmpeg: moov atom not found): the file was cut before its index was ` +
        'written; nothing can be salvaged, even with --allow-damaged; export or copy the video again ' +
        '(an index can only be rebuilt from an intact recording of the same camera, e.g. with untrunc)',
    );
  }
  if (run.code !== 0 || !stream || frameCount === 0) {
    const reason = ffmpegReason(errors.join('\n'), abs) || 'no video frames';
    throw new McoreError(
      'E_INPUT',
      `${abs}: not a readable video (ffmpeg: ${reason}); check that the file is a complete video file`,
    );
  }
  const size = /, (\d+)x(\d+)/.exec(stream[0]);
  const fpsMatch = /, ([\d.]+) fps/.exec(stream[0]) ?? /, ([\d.]+)(k?) tbr/.exec(stream[0]);
  let fps = fpsMatch ? Number(fpsMatch[1]) * (fpsMatch[2] === 'k' ? 1000 : 1) : Number.NaN;
  fps = snapFps(fps);
  const dur = /Duration: (\d+):(\d+):([\d.]+)/.exec(input);
  const duration = dur ? Number(dur[1]) * 3600 + Number(dur[2]) * 60 + Number(dur[3]) : Number.NaN;
  const after = input.slice(stream.index);
  const rot = /rotate\s*:\s*(-?\d+)/.exec(after) ?? /rotation of (-?[\d.]+) degrees/.exec(after);
  const turned = rot ? Math.abs(Math.round(Number(rot[1]))) % 180 === 90 : false;
  let width = size ? Number(size[1]) : 0;
  let height = size ? Number(size[2]) : 0;
  if (turned) [width, height] = [height, width];
  const warnings: string[] = [];
  if (!(fps > 0) || width === 0) {
    throw new McoreError('E_INPUT', `${abs}: ffmpeg reports no frame rate or size for the video stream`);
  }
  if (errors.length > 0) {
    const expected = Number.isFinite(duration) ? `, the header says about ${Math.round(duration * fps)}` : '';
    warnings.push(
      `${abs}: the file is truncated or damaged (ffmpeg: ${ffmpegReason(errors.join('\n'), abs)}); ` +
        `${frameCount} frames are readable${expected}`,
    );
  }
  return { path: abs, frameCount, fps, duration, width, height, codec: stream[1], warnings };
}
