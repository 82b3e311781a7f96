#!/usr/bin/env node
// The `fedtune` executable: runs the compiled CLI in dist/ (built by `npm install` through `prepare`, or by
// `npm run build`). When there is no build, or a source file's contents changed since it (bin/fresh.js), it rebuilds
// dist/ first (about 2 s, once; the build's log goes to stderr), so an edit takes effect at once and later commands
// start fast.
// Only when it cannot build (another process is building, or the build fails) does it run the TypeScript sources
// through tsx, which costs every start about 1.5 s.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isFresh } from './fresh.js';

const root = new URL('../', import.meta.url);
const freshBuild = () => process.env.FEDTUNE_FROM_SOURCE !== '1' && isFresh(fileURLToPath(root));

/** A lock older than this was left by a build that died: it is taken over. */
const STALE_LOCK_MS = 120_000;

/**
 * Rebuilds dist/ with scripts/build.js, one process at a time (dist.lock, made atomically); true when the build is
 * fresh afterwards. A process that finds the lock held does not wait: it runs from the sources this once.
 */
function rebuild() {
  const base = fileURLToPath(root);
  const script = `${base}scripts/build.js`;
  if (process.env.FEDTUNE_FROM_SOURCE === '1' || !existsSync(script)) return false;
  const lock = `${base}dist.lock`;
  const held = statSync(lock, { throwIfNoEntry: false });
  if (held !== undefined && Date.now() - held.mtimeMs > STALE_LOCK_MS)
    rmSync(lock, { recursive: true, force: true });
  try {
    mkdirSync(lock);
  } catch {
    return false;
  }
  try {
    const built = spawnSync(process.execPath, [script], { stdio: ['ignore', 2, 2] });
    return built.status === 0 && freshBuild();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

let cli;
if (freshBuild() || rebuild()) {
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
