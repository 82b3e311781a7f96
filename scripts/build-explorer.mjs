// Bundles the explorer's page (explorer/web → explorer/dist) with esbuild, at build time: the package serves the
// committed bundle, so nothing is built or fetched at run time. `--check` builds in memory and fails when the
// committed bundle differs from what the sources give (a stale bundle), without writing anything.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { URL, fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = `${root}explorer/dist`;
const check = process.argv.includes('--check');

const result = await build({
  absWorkingDir: root,
  entryPoints: { app: 'explorer/web/main.ts', 'app-style': 'explorer/web/style.css' },
  entryNames: '[name]',
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  legalComments: 'eof',
  // uPlot's licence header is a plain comment that minifying drops; its notice travels with the bundle here.
  banner: {
    js: '/*! fedtune explorer (Apache-2.0). Bundles uPlot 1.6.32, (c) Leon Sorokin, MIT licence. */',
  },
  charset: 'utf8',
  outdir: dist,
  write: false,
  logLevel: 'warning',
});

const outputs = new Map([[`${dist}/index.html`, readFileSync(`${root}explorer/web/index.html`)]]);
for (const file of result.outputFiles) {
  // esbuild names the CSS of the style entry app-style.css; the page links assets/app.css.
  outputs.set(file.path.replace(/app-style\.css$/, 'app.css'), Buffer.from(file.contents));
}

let stale = 0;
for (const [path, bytes] of outputs) {
  const name = path.slice(root.length);
  if (check) {
    let current = null;
    try {
      current = readFileSync(path);
    } catch {
      // missing counts as stale
    }
    if (current === null || !current.equals(bytes)) {
      stale++;
      console.error(`${name} is stale: run \`node scripts/build-explorer.mjs\` and commit explorer/dist`);
    }
  } else {
    mkdirSync(dist, { recursive: true });
    writeFileSync(path, bytes);
    console.log(`${name} ${bytes.length} bytes`);
  }
}
process.exit(stale === 0 ? 0 : 1);
