/**
 * What the page does with a folder or a video before decoding, the way Node does it (no DOM here;
 * unit-tested in Node against the Node functions): which files of a picked folder are frames and in
 * which order (src/data/images.ts listFrameFolder: .jpg/.jpeg/.png directly in the folder, natural name
 * order), and the frame rate as ffmpeg reports it (src/data/video.ts: NTSC rates restored).
 *
 * @example
 * frameFiles([{ name: '10.png', path: 'clip/10.png' }, { name: '2.png', path: 'clip/2.png' }]);  // 2.png, 10.png
 */

const IMAGE_EXT = /\.(jpe?g|png)$/i;
const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** Natural name order: '2.jpg' before '10.jpg' (as src/data/images.ts naturalCompare). */
export function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * The frames of a picked folder: image files directly in the top folder (`path` relative to the pick,
 * e.g. 'clip/00012.png'; files in sub-folders are not frames), in natural name order.
 */
export function frameFiles<F extends { name: string; path: string }>(files: readonly F[]): F[] {
  const depth = (p: string) => p.split('/').filter(Boolean).length;
  const top = Math.min(...files.map((f) => depth(f.path)));
  return files
    .filter((f) => IMAGE_EXT.test(f.name) && depth(f.path) === top)
    .sort((a, b) => naturalCompare(a.name, b.name));
}

/** A frame rate as ffmpeg prints it: NTSC rates such as 29.97 restored to 30000/1001. */
export function snapFps(fps: number): number {
  const ntsc = (fps * 1001) / 1000;
  return !Number.isInteger(fps) && Math.abs(ntsc - Math.round(ntsc)) < 0.006
    ? (Math.round(ntsc) * 1000) / 1001
    : fps;
}
