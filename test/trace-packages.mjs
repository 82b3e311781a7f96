// Test helper, loaded with `node --import`: prints every npm package this process imports to stderr as
// `package NAME` lines, so a test can see that `fedtune --help` loads no TensorFlow.js and no @polkadot/api.
import { register } from 'node:module';

register(
  `data:text/javascript,${encodeURIComponent(`
const seen = new Set();
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(resolved.url);
  if (m && !seen.has(m[1])) {
    seen.add(m[1]);
    process.stderr.write('package ' + m[1] + '\\n');
  }
  return resolved;
}`)}`,
);
