// `npm run build` (and `prepare`, so `npm install` and `npm ci` run it): compiles the folders that the `fedtune`
// executable runs into dist/ as plain JavaScript, one file per source file (esbuild, which tsx already brings;
// no type check here, `npm run typecheck` does that), copies their other files (proto/fedtune.proto, …) beside it,
// and writes dist/build.json, which bin/fedtune.js reads to tell a build older than the sources.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What runs as `fedtune`; a new top-level folder that the CLI imports is added here. Tests and bench run through tsx. */
export const FOLDERS = [
  'bin',
  'cli',
  'devchain',
  'pallet-bindings',
  'datasets',
  'model',
  'worker',
  'aggregation',
  'coordinator',
  'checkpoints',
  'proto',
  'merkle',
  'verify',
  'demo',
  'explorer',
];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

/** Every import stays an import (nothing is bundled); a relative `./x.ts` becomes `./x.js`. */
const keepImports = {
  name: 'keep-imports',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      const path = args.path.startsWith('.') ? args.path.replace(/\.ts$/, '.js') : args.path;
      return { path, external: true };
    });
  },
};

const started = Date.now();
rmSync(dist, { recursive: true, force: true });
const entryPoints = [];
for (const folder of FOLDERS) {
  for (const entry of readdirSync(join(root, folder), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    if (file.endsWith('.ts')) entryPoints.push(file);
    else if (folder !== 'bin') {
      // bin/fedtune.js is the entry point that picks dist/ or the sources; it is not part of the build.
      const to = join(dist, relative(root, file));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(file, to);
    }
  }
}
await build({
  entryPoints,
  outdir: dist,
  outbase: root,
  bundle: true,
  plugins: [keepImports],
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
});
writeFileSync(join(dist, 'build.json'), `${JSON.stringify({ folders: FOLDERS, builtAt: Date.now() })}\n`);
process.stdout.write(
  `build: ${entryPoints.length} files from ${FOLDERS.length} folders into dist/ in ${Date.now() - started} ms\n`,
);
