#!/usr/bin/env node
// The `fedtune` executable: runs the compiled CLI in dist/ (built by `npm install` through `prepare`, or by
// `npm run build`); when there is no build, or a source file or folder changed after it, runs the TypeScript
// sources through tsx instead, so an edit takes effect before the next build (only slower to start).
import { readFileSync, readdirSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);

/** The build's folders when dist/ is at least as new as every file and folder in them; null otherwise. */
function freshBuild() {
  if (process.env.FEDTUNE_FROM_SOURCE === '1') return false;
  let build;
  try {
    build = JSON.parse(readFileSync(new URL('dist/build.json', root), 'utf8'));
  } catch {
    return false;
  }
  for (const folder of build.folders) {
    const dir = new URL(`${folder}/`, root);
    if (statSync(dir).mtimeMs > build.builtAt) return false;
    for (const name of readdirSync(dir, { recursive: true })) {
      if (statSync(new URL(name, dir)).mtimeMs > build.builtAt) return false;
    }
  }
  return true;
}

let cli;
if (freshBuild()) {
  cli = await import(new URL('dist/cli/index.js', root).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import('../cli/index.ts');
}
// A command is over when main resolves (long-running ones resolve when stopped). Exit then, rather than wait for
// what libraries leave behind: @polkadot/api's closed connection keeps a socket and timers alive for about 2 s.
// stdout and stderr are synchronous for files and pipes on Linux, so nothing printed is lost.
process.exit(await cli.main(process.argv.slice(2)));
