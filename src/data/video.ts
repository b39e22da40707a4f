/**
 * Video files through ffmpeg (a child process, never a shell): probe a video, decode only the sampled
 * frames as RGB, cache decoded sample sets on disk, and encode frames to MP4.
 *
 * Frame numbers are decode-order positions from the start of the file (0-based), as FineDiving's
 * frames were extracted with ffmpeg. Decoding always starts at the first frame (exact frame numbers,
 * no seek inaccuracy) and stops after the last wanted one; ffmpeg's `select` filter drops every other
 * frame before scaling, so only the sampled frames cross the pipe and are kept in memory. A clip in a
 * long untrimmed video costs one decode up to its end; `VideoClipCache` then serves it from disk.
 *
 * Speed: decoding the full-size frames is nearly all of the cost (a 5 s 720p H.264 clip: about
 * 0.37 s of CPU to decode, 0.02-0.04 s more to bring 96 frames to 112 x 112 with bicubic). Frames are
 * brought to the output size in one swscale pass that also converts YUV to RGB (the conversion runs on
 * the small frame), with the area-averaging scaler: it filters out aliasing as bicubic does (mean
 * |difference| 0.34 of 255 from bicubic, the same distance as bicubic from sharp's resize) at about a
 * third of its cost. `fastDecode` also skips the decoder's deblocking filter (about 20% less decoding;
 * pixels differ).
 *
 * Example:
 *   const info = await probeVideo('clip.mp4');            // { frameCount: 75, fps: 25, width: 320, ... }
 *   const { frames, indices } = await decodeFrames('clip.mp4', { count: 8, width: 112, height: 200 });
 *   // indices = [0, 10, 21, 31, 42, 52, 63, 74]: numpy.linspace(0, 74, 8) truncated, as the reference samples
 *   await encodeMp4(frames, 25, 'out.mp4');
 *
 * The parts live in ./video/: ffmpeg.ts (locate and run ffmpeg; the decoder's id), probe.ts, decode.ts,
 * cache.ts (VideoClipCache) and encode.ts; this file is their surface.
 */
export { defaultClipCacheDir, VideoClipCache } from './video/cache.ts';
export { type DecodedClip, type DecodeOptions, decodeFrames, SCALER } from './video/decode.ts';
export { type EncodeOptions, encodeMp4 } from './video/encode.ts';
export { decoderId, ffmpegPath } from './video/ffmpeg.ts';
export { probeVideo, type VideoInfo } from './video/probe.ts';
