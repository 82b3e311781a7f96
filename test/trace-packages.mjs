// Test helper, loaded with `node --import`: prints every npm package this process loads to stderr as `package NAME`
// lines, and every module of the build's dist/vendor/ (bundled packages: @polkadot/api and what it brings, ws among
// them; yargs) as `vendored FILE`, so a test can see what `fedtune --help` loads. ES modules are seen as they are
// resolved (a hook, which sees an ES module's import of CommonJS too); CommonJS that CommonJS requires is read from
// the require cache when the process exits (bin/fedtune.js ends with process.exit, which still emits 'exit').
import { register, createRequire } from 'node:module';

register(
  `data:text/javascript,${encodeURIComponent(`
const seen = new Set();
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)|\\/dist\\/vendor\\/([^/]+)$/.exec(resolved.url);
  const line = m === null ? null : m[1] !== undefined ? 'package ' + m[1] : 'vendored ' + m[2];
  if (line !== null && !seen.has(line)) {
    seen.add(line);
    process.stderr.write(line + '\\n');
  }
  return resolved;
}`)}`,
);

const cache = createRequire(import.meta.url).cache;
process.on('exit', () => {
  const names = new Set();
  for (const file of Object.keys(cache)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
    if (m) names.add(m[1]);
  }
  for (const name of names) process.stderr.write(`package ${name}\n`);
});
