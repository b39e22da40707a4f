/**
 * Image files as frames (through sharp): read a JPEG/PNG into an RGB Frame (optionally resized), write
 * a Frame as JPEG or PNG, and list a folder of frame images in frame order. FineDiving's frames are
 * `<instance>/<absolute_frame:05d>.jpg` files (see shared/docs/finediving-format.md).
 *
 * Example:
 *   const files = await listFrameFolder('data/FINADiving_MTL_256s/01/1');   // ['.../00012.jpg', ...]
 *   const f = await readImage(files[0], { width: 112, height: 200 });       // { width: 112, height: 200, data }
 *   await writeJpeg('/tmp/f.jpg', f, 90);
 */
import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { McoreError } from '../errors.ts';
import type { Frame } from './types.ts';

/** How a frame is brought to a target size: 'squeeze' stretches, 'cover' scales to fill and centre-crops. */
export type FitMode = 'squeeze' | 'cover';

export interface ResizeOptions {
  width: number;
  height: number;
  fit?: FitMode;
}

const IMAGE_EXT = /\.(jpe?g|png)$/i;

function reasonOf(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

/**
 * How strictly a frame is decoded: 'error' (default) refuses files libvips cannot decode; 'warning'
 * also refuses damage the decoder only warns about (garbled entropy-coded data, which decodes to a
 * smeared picture; the frame is decoded once at full size to see it); 'none' decodes whatever it can.
 */
export type DecodeStrictness = 'error' | 'warning' | 'none';

/**
 * Reads a JPEG or PNG file as an RGB frame (alpha dropped, greyscale expanded), resized when `resize`
 * is given. An unreadable or corrupt file throws McoreError('E_INPUT') naming it.
 */
export async function readImage(
  path: string,
  resize?: ResizeOptions,
  failOn: DecodeStrictness = 'error',
): Promise<Frame> {
  try {
    // libvips decodes a JPEG at a reduced scale when it shrinks it on load, which can skip the damaged
    // data; strict reads decode the whole frame once to see every warning, pixels as before
    if (failOn === 'warning') await sharp(path, { failOn }).raw().toBuffer();
    let img = sharp(path, { failOn: failOn === 'warning' ? 'error' : failOn })
      .removeAlpha()
      .toColourspace('srgb');
    if (resize) {
      img = img.resize(resize.width, resize.height, { fit: resize.fit === 'cover' ? 'cover' : 'fill' });
    }
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) {
      throw new Error(`decoded to ${info.channels} channels instead of 3`);
    }
    return {
      width: info.width,
      height: info.height,
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    };
  } catch (e) {
    throw new McoreError(
      'E_INPUT',
      `${path}: cannot read the image (${reasonOf(e)}); frames must be readable JPEG or PNG files`,
    );
  }
}

function encoder(frame: Frame): ReturnType<typeof sharp> {
  const { width, height, data } = frame;
  if (data.length !== width * height * 3) {
    throw new McoreError(
      'E_SHAPE',
      `frame data has ${data.length} bytes, expected width x height x 3 = ${width * height * 3}`,
    );
  }
  return sharp(data, { raw: { width, height, channels: 3 } });
}

/** Writes a frame as a baseline JPEG (quality 1-100, full-resolution chroma so small frames stay sharp). */
export async function writeJpeg(path: string, frame: Frame, quality = 90): Promise<void> {
  await encoder(frame).jpeg({ quality, chromaSubsampling: '4:4:4' }).toFile(path);
}

/** Writes a frame as a lossless PNG. */
export async function writePng(path: string, frame: Frame): Promise<void> {
  await encoder(frame).png().toFile(path);
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** Compares file names in natural order: '2.jpg' before '10.jpg', '00009.jpg' before '00010.jpg'. */
export function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * The image files (jpg, jpeg, png) of a frame folder, as full paths in natural name order. A missing
 * folder or one without images throws McoreError('E_DATA_LAYOUT') naming it.
 */
export async function listFrameFolder(dir: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new McoreError(
      'E_DATA_LAYOUT',
      `${dir}: cannot list the frame folder (${reasonOf(e)}); expected a folder of numbered .jpg/.png frames`,
    );
  }
  const special = entries.find(
    (d) =>
      IMAGE_EXT.test(d.name) && (d.isFIFO() || d.isSocket() || d.isCharacterDevice() || d.isBlockDevice()),
  );
  if (special !== undefined) {
    // reading a named pipe would block forever: refused before any frame is read
    throw new McoreError(
      'E_DATA_LAYOUT',
      `${join(dir, special.name)}: is not a regular file (a pipe, socket or device); frames must be image files`,
    );
  }
  const names = entries
    .filter((d) => !d.isDirectory() && IMAGE_EXT.test(d.name))
    .map((d) => d.name)
    .sort(naturalCompare);
  if (names.length === 0) {
    const sub = entries.filter((d) => d.isDirectory()).map((d) => d.name);
    const hint =
      sub.length > 0 ? ` (it has sub-folders: ${sub.slice(0, 3).join(', ')}; point at one of them)` : '';
    throw new McoreError('E_DATA_LAYOUT', `${dir}: no .jpg/.jpeg/.png frames in this folder${hint}`);
  }
  return names.map((n) => join(dir, n));
}

/** The frame number in a file name such as '00123.jpg' or 'img_123.png' (last digit run), or undefined. */
export function frameNumberOf(path: string): number | undefined {
  const m = /(\d+)\D*$/.exec(path.replace(/^.*[\\/]/, '').replace(IMAGE_EXT, ''));
  return m ? Number(m[1]) : undefined;
}
