#!/usr/bin/env node
// The `fedtune` executable: runs the compiled CLI in dist/ (built by `npm install` through `prepare`, or `npm run build`),
// or the TypeScript sources through tsx when there is no build (a checkout before its first install).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli/index.js', import.meta.url);
let cli;
if (process.env.FEDTUNE_FROM_SOURCE !== '1' && existsSync(compiled)) {
  cli = await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import('../cli/index.ts');
}
process.exitCode = await cli.main(process.argv.slice(2));
