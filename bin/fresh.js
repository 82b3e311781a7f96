// Whether dist/ is at least as new as what it was built from: bin/fedtune.js asks before every command (a stale build
// is rebuilt once), scripts/test.js before the tests (a fresh one is not built again).
import { readFileSync, readdirSync, statSync } from 'node:fs';

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

/**
 * Whether `root`/dist/ is at least as new as every file and folder in the build's folders, and in `more` (paths under
 * `root`). It runs before every command, `--help` too, so it walks the folders itself: Node 20's
 * `readdirSync(dir, { recursive: true })` took about 30 ms for the ~250 entries, this walk 1–4 ms.
 */
export function isFresh(root, more = []) {
  let build;
  try {
    build = JSON.parse(readFileSync(`${root}dist/build.json`, 'utf8'));
  } catch {
    return false;
  }
  return [...build.folders, ...more].every((path) => notNewerThan(`${root}${path}`, build.builtAt));
}
