#!/usr/bin/env node
// Entry point of the `mcore` command: the compiled CLI (dist/, built by `npm run build`, which
// `npm ci` runs through `prepare`). Tests run the TypeScript sources instead (test/helpers/cli.ts).
await import('../dist/cli/main.js');
