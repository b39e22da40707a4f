/**
 * Node's renderer of the charts' vega-lite specs (./specs.ts, src/eval/charts.ts): compiled by vega-lite,
 * drawn headless to an SVG string by vega (View, renderer 'none': no DOM, no canvas) and rasterised to
 * PNG by sharp (librsvg). The browser page draws the same specs with vega's View (web/render.ts).
 *
 * @example
 * const svg = await renderSvg(resultDeltaSpec(result), { titles: true });  // hover text inline in HTML
 * const png = await svgToPng(svg, 2);   // twice the SVG's pixel size
 */
import sharp from 'sharp';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { McoreError } from '../errors.ts';

/**
 * Renders a vega-lite spec to an SVG document string. `titles`: every mark item with an accessible label
 * (the specs set it to the tooltip text) also gets it as a `<title>` child, which browsers show on hover
 * where the SVG sits inline in HTML (the tooltips vega's View shows in a live page).
 */
export async function renderSvg(spec: TopLevelSpec, o: { titles?: boolean } = {}): Promise<string> {
  const compiled = compile(spec).spec;
  const view = new vega.View(vega.parse(compiled as vega.Spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return o.titles ? withTitles(svg) : svg;
  } finally {
    view.finalize();
  }
}

/** `<path role="graphics-symbol" aria-label="X" .../>` -> `<path ...><title>X</title></path>` (same for line, image). */
function withTitles(svg: string): string {
  return svg.replace(/<(path|line|image)\b([^>]*?)\/>/g, (item: string, tag: string, attrs: string) => {
    const label = /\baria-label="([^"]*)"/.exec(attrs);
    if (!label || !/\brole="graphics-symbol"/.test(attrs)) return item;
    return `<${tag}${attrs}><title>${label[1]}</title></${tag}>`;
  });
}

/** Rasterises an SVG at `scale` times its pixel size (librsvg through sharp). */
export async function svgToPng(svg: string, scale = 1): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density: 72 * scale })
    .png()
    .toBuffer();
}

/** Width and height in pixels declared on an SVG document's root element. */
export function svgSize(svg: string): { width: number; height: number } {
  const m = /<svg\b[^>]*?\bwidth="([\d.]+)"[^>]*?\bheight="([\d.]+)"/.exec(svg);
  if (!m) throw new McoreError('E_INPUT', 'svgSize: no width/height on the <svg> element');
  return { width: Number(m[1]), height: Number(m[2]) };
}
