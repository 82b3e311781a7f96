// Whether dist/ was built from the sources as they are: bin/fedtune.js asks before every command (a stale build is
// rebuilt once), scripts/test.js before the tests (a fresh one is not built again).
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';

/** The build's inputs besides its folders: a change to one makes dist/ stale for the tests (scripts/test.js). */
export const BUILD_INPUTS = ['scripts', 'package.json', 'package-lock.json'];

/** Whether `path` (a file, or a folder and everything under it) is no newer than `time` (ms); a missing one is not. */
function notNewerThan(path, time) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat === undefined || stat.mtimeMs > time) return false;
  if (!stat.isDirectory()) return true;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const inner = `${path}/${entry.name}`;
    if (entry.isDirectory()) {
      if (!notNewerThan(inner, time)) return false;
    } else {
      const file = statSync(inner, { throwIfNoEntry: false });
      if (file === undefined || file.mtimeMs > time) return false;
    }
  }
  return true;
}

/** Feeds every file under `path` (or the file itself) to `hash`, names and contents, in name order. */
function hashInto(hash, root, path) {
  const stat = statSync(`${root}${path}`, { throwIfNoEntry: false });
  if (stat === undefined) return;
  if (!stat.isDirectory()) {
    hash
      .update(`${path}\0`)
      .update(readFileSync(`${root}${path}`))
      .update('\0');
    return;
  }
  const names = readdirSync(`${root}${path}`).sort();
  for (const name of names) hashInto(hash, root, `${path}/${name}`);
}

/** SHA-256 of the names and contents of everything under `root`/`path` (a file or a folder): what a build read. */
export function contentHash(root, path) {
  const hash = createHash('sha256');
  hashInto(hash, root, path);
  return hash.digest('hex');
}

/**
 * Whether `root`/dist/ was built from the build's folders, and `more` (paths under `root`), as they are now. It runs
 * before every command, `--help` too, so it first compares times, walking the folders itself (Node 20's
 * `readdirSync(dir, { recursive: true })` took about 30 ms for the ~250 entries, this walk 1–4 ms). Only a path with
 * something newer than the build is hashed and compared with what the build recorded (about 10 ms for all of them):
 * a copied tree, a checkout or `git stash` and back give files new times, not new contents, and need no rebuild.
 */
export function isFresh(root, more = []) {
  let build;
  try {
    build = JSON.parse(readFileSync(`${root}dist/build.json`, 'utf8'));
  } catch {
    return false;
  }
  return [...build.folders, ...more].every(
    (path) =>
      notNewerThan(`${root}${path}`, build.builtAt) ||
      (typeof build.hashes?.[path] === 'string' && build.hashes[path] === contentHash(root, path)),
  );
}
