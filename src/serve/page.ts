/**
 * Where the built scoring page is. An installed package ships it in dist/web (built by `prepare`). A
 * source checkout without it (e.g. `tsx src/cli/main.ts serve` before any build) builds it on the fly
 * with scripts/build-web.mjs, which needs esbuild, a devDependency present in every checkout.
 * MCORE_WEB_ROOT names a page built elsewhere (the browser tests build theirs into a temporary folder,
 * so that they never rewrite dist/web under another test's server).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { McoreError } from '../errors.ts';
import { packageWebRoot } from './server.ts';

/** The built page's folder; builds it first when missing in a source checkout (`note` says so). */
export async function pageRoot(note: (line: string) => void = () => {}): Promise<string> {
  const own = process.env.MCORE_WEB_ROOT;
  if (own) {
    if (!existsSync(path.join(own, 'index.html'))) {
      throw new McoreError(
        'E_INPUT',
        `MCORE_WEB_ROOT=${own}: no index.html there; build the page with scripts/build-web.mjs or unset it`,
      );
    }
    return path.resolve(own);
  }
  const dir = packageWebRoot();
  if (existsSync(path.join(dir, 'index.html'))) return dir;
  const script = path.join(dir, '..', '..', 'scripts', 'build-web.mjs');
  if (!existsSync(script)) {
    throw new McoreError(
      'E_BACKEND',
      `${dir}: the scoring page is not built; run 'npm run build' in the mcore package (or reinstall it)`,
    );
  }
  note(`building the scoring page into ${dir} (once)`);
  const { buildWeb } = (await import(pathToFileURL(script).href)) as {
    buildWeb: (o: { outdir: string }) => Promise<string>;
  };
  try {
    return await buildWeb({ outdir: dir });
  } catch (e) {
    throw new McoreError(
      'E_BACKEND',
      `cannot build the scoring page from web/ (${(e as Error).message.split('\n')[0]}); run 'npm run build'`,
    );
  }
}
