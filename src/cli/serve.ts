/**
 * `mcore serve --model BUNDLE [--port 8080] [--host 127.0.0.1]`: the scoring page on a local server
 * (src/serve/server.ts). Prints the address on stdout; Ctrl-C (SIGINT) or SIGTERM stops it cleanly.
 */
import type { Command } from 'commander';
import { McoreError } from '../errors.ts';
import { readBundle } from '../score/bundle.ts';
import { pageRoot } from '../serve/page.ts';
import { startServer } from '../serve/server.ts';

function portOption(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new McoreError(
      'E_INPUT',
      `--port must be an integer from 0 to 65535 (0: any free port), got '${v}'`,
    );
  }
  return n;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export function register(program: Command): void {
  program
    .command('serve')
    .description('score videos in a browser: serve the scoring page and a bundle on this machine')
    .requiredOption('--model <dir>', 'scoring bundle folder (mcore export)')
    .option('--port <n>', 'port to listen on (0: any free port)', portOption, 8080)
    .option('--host <addr>', 'interface to listen on (default: loopback only)', '127.0.0.1')
    .action(async (o: { model: string; port: number; host: string }) => {
      const bundle = await readBundle(o.model);
      const webRoot = await pageRoot((line) => process.stderr.write(`mcore: ${line}\n`));
      const server = await startServer({ bundleDir: bundle.dir, webRoot, port: o.port, host: o.host });
      if (!LOOPBACK.test(o.host)) {
        process.stderr.write(
          `mcore: warning: listening on ${o.host}: other machines can load the page; browsers decode ` +
            'video (WebCodecs) and run threads only on https or localhost addresses\n',
        );
      }
      process.stdout.write(
        `serving ${bundle.dir} (${bundle.exemplars.records.length} exemplars) at ${server.url}\n` +
          'open it in a browser; Ctrl-C stops\n',
      );
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void server.close().then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      process.stdout.write('stopped\n');
    });
}
