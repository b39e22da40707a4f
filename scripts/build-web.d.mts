/** Builds the scoring page (web/) into `outdir` (default <root>/dist/web); returns the folder. */
export function buildWeb(o?: { root?: string; outdir?: string }): Promise<string>;
