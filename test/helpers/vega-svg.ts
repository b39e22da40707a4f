/**
 * Reading the SVG vega draws (Node's toSVG string, or the page's DOM serialised): the items of a named
 * mark (a vega-lite layer or view `name: 'deltaBars'` becomes the group class `deltaBars_marks`), and
 * the geometry of rect and rule items.
 */

/** Item elements (path, line, image, text; with their content) of the mark group named `name`, in data order. */
export function markItems(svg: string, name: string): string[] {
  const groups = [
    ...svg.matchAll(new RegExp(`<g class="mark-\\w+ role-mark ${name}_marks"[^>]*>(.*?)</g>`, 'g')),
  ];
  if (groups.length !== 1) throw new Error(`${groups.length} mark groups named ${name}`);
  return groups[0][1].match(/<(path|line|image|text)\b[^>]*?(\/>|>.*?<\/\1>)/g) ?? [];
}

/** x rounded to 1e-6 (vega's coordinates carry float noise: 231.00000000000003). */
export const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

/** An attribute of an element's start tag (undefined when absent). */
export function attrOf(el: string, name: string): string | undefined {
  return new RegExp(`\\s${name}="([^"]*)"`).exec(el)?.[1];
}

/** x, y, width, height (signed as drawn) and fill of a vega rect path 'M{x},{y}h{w}v{h}h-{w}Z'. */
export function rectOf(el: string): { x: number; y: number; w: number; h: number; fill: string } {
  const d = /\bd="M([-\d.e]+),([-\d.e]+)h([-\d.e]+)v([-\d.e]+)h-?[\d.e]+Z"/.exec(el);
  const fill = attrOf(el, 'fill');
  if (!d || fill === undefined) throw new Error(`not a rect: ${el}`);
  return { x: Number(d[1]), y: Number(d[2]), w: Number(d[3]), h: Number(d[4]), fill };
}

/** Start x, y and length of a horizontal vega rule 'transform="translate(x,y)" x2="len" y2="0"'. */
export function ruleOf(el: string): { x: number; y: number; length: number } {
  const t = /translate\(([-\d.e]+),([-\d.e]+)\)/.exec(el);
  const x2 = attrOf(el, 'x2');
  if (!t || x2 === undefined || Number(attrOf(el, 'y2')) !== 0)
    throw new Error(`not a horizontal rule: ${el}`);
  return { x: Number(t[1]), y: Number(t[2]), length: Number(x2) };
}

/** The x of a vega item placed by 'transform="translate(x,y)"'. */
export function translateX(el: string): number {
  const t = /translate\(([-\d.e]+),/.exec(el);
  if (!t) throw new Error(`not translated: ${el}`);
  return Number(t[1]);
}

/** The per-stage chart's bars (src/charts/specs.ts stageDeltaSpec): tooltip and px above the zero line (below: negative). */
export function deltaBars(svg: string): { label: string; height: number }[] {
  const [zero] = markItems(svg, 'zero').map(ruleOf);
  return markItems(svg, 'deltaBars').map((el) => {
    const b = rectOf(el);
    const top = Math.min(b.y, b.y + b.h);
    const bottom = Math.max(b.y, b.y + b.h);
    return {
      label: attrOf(el, 'aria-label') ?? '',
      height: top < zero.y - 1e-6 ? zero.y - top : zero.y - bottom,
    };
  });
}

/**
 * Checks that a per-stage chart draws `perStage` (a score result's): one bar per (stage, exemplar) in
 * that order, named by its tooltip, its height proportional to the delta (same px per score unit for
 * all); returns the px per score unit.
 */
export function checkDeltaBars(
  svg: string,
  perStage: readonly { stage: string; deltas: readonly { exemplar: string; delta: number }[] }[],
): number {
  const bars = deltaBars(svg);
  const want = perStage.flatMap((s) => s.deltas.map((d) => ({ ...d, stage: s.stage })));
  if (bars.length !== want.length) throw new Error(`${bars.length} bars for ${want.length} deltas`);
  const big = want.reduce((a, b, i) => (Math.abs(b.delta) > Math.abs(want[a].delta) ? i : a), 0);
  const k = bars[big].height / want[big].delta;
  if (!(k > 0)) throw new Error(`the largest delta's bar has px per unit ${k}`);
  want.forEach((w, i) => {
    const sign = w.delta >= 0 || Number(Math.abs(w.delta).toFixed(3)) === 0 ? '+' : '-';
    const label = `${w.stage} vs ${w.exemplar}: ${sign}${Math.abs(w.delta).toFixed(3)}`;
    if (bars[i].label !== label) throw new Error(`bar ${i} is '${bars[i].label}', expected '${label}'`);
    if (Math.abs(bars[i].height - w.delta * k) > 1e-6 * Math.max(1, Math.abs(bars[big].height)))
      throw new Error(`bar ${i} (${label}) is ${bars[i].height} px high, expected ${w.delta * k}`);
  });
  return k;
}
