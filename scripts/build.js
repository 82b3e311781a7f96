// `npm run build` (and `prepare`, so `npm install` and `npm ci` run it): compiles the folders that the `fedtune`
// executable runs into dist/ as plain JavaScript, one file per source file (esbuild, which tsx already brings;
// no type check here, `npm run typecheck` does that), copies their other files (proto/fedtune.proto, …) beside it,
// and writes dist/build.json, which bin/fedtune.js reads to tell a build older than the sources.
// @polkadot/api and the @polkadot packages beside it are the one exception: they are bundled into dist/vendor/ (one
// script, dist/vendor/polkadot.cjs, run through V8's code cache, behind an ES module face per package), because Node
// resolving, reading and compiling their ~900 files one by one cost a chain command about 0.5 s of its start (#19),
// and compiling the bundle afresh in every process most of what was left (#13). devchain/ keeps the installed packages, as
// chopsticks, which it runs, imports them itself. yargs, with cliui and the rest of its help rendering, is bundled into
// dist/vendor/yargs.js too, so that `fedtune --help` reads one file instead of about 45 (#13), with string-width
// answering printable ASCII at once (scripts/ascii-width.ts).
import { build } from 'esbuild';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
// Plain JavaScript run by node, as bin/fedtune.js is: the hash it compares is made here.
// eslint-disable-next-line fedtune/boundaries
import { BUILD_INPUTS, contentHash } from '../bin/fresh.js';

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
  'errors',
  'verify',
  'demo',
  'explorer',
];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/**
 * The build goes to a staging folder beside dist/ and replaces dist/ only once whole, so that a `fedtune` already
 * running from dist/ (or starting meanwhile) never reads a half-written build. Being a sibling, it gives every
 * relative path inside the build as dist/ would.
 */
const target = join(root, 'dist');
const dist = join(root, `dist.next-${process.pid}`);

/** The packages bundled into dist/vendor/<name>.js; only their package roots are imported as values by our code. */
export const VENDORED = [
  '@polkadot/api',
  '@polkadot/keyring',
  '@polkadot/types',
  '@polkadot/util',
  '@polkadot/util-crypto',
  // pallet-bindings/keys.ts derives and signs sr25519 keys with it: the one instance util-crypto initialises.
  '@polkadot/wasm-crypto',
];
/** The packages bundled into dist/vendor/<name>.js on their own, no chunk shared with the others: the CLI's start. */
export const VENDORED_ALONE = ['yargs'];
/**
 * CommonJS packages that dist/ loads with require, through an ES module face in dist/vendor/ (see requireFace): Node
 * imports a CommonJS module into an ES module only after cjs-module-lexer has parsed all of its source for the names it
 * exports, which cost each coordinator and trainer process about 0.45 s of CPU for TensorFlow.js (2.6 MB in two files),
 * against ~0.1 s to require the same files, and 0.1 s for ws, whose ES module wrapper imports its eight CommonJS files.
 */
export const REQUIRED = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', 'ws'];
const vendorFile = (pkg) => join(dist, 'vendor', `${pkg.replace(/^@(polkadot|tensorflow)\//, '')}.js`);

/**
 * Every import stays an import (nothing is bundled); a relative `./x.ts` becomes `./x.js`, a vendored package, outside
 * devchain/, the relative path of its bundle, and a REQUIRED package the relative path of its face.
 */
const keepImports = {
  name: 'keep-imports',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      if (
        REQUIRED.includes(args.path) ||
        ([...VENDORED, ...VENDORED_ALONE].includes(args.path) &&
          !relative(root, args.importer).startsWith('devchain'))
      ) {
        const from = dirname(join(dist, relative(root, args.importer)));
        return {
          path: `./${relative(from, vendorFile(args.path))}`.replace(/^\.\/\.\./, '..'),
          external: true,
        };
      }
      const path = args.path.startsWith('.') ? args.path.replace(/\.ts$/, '.js') : args.path;
      return { path, external: true };
    });
  },
};

const wasmBytesModule = /wasm-crypto-wasm[\\/]bundle\.js$/;
const WASM_FILE = 'wasm-crypto.wasm';

/**
 * @polkadot/wasm-crypto-wasm ships its WebAssembly as a base64 string of deflated bytes, and decodes and inflates it
 * (fflate, in JavaScript) when its module is evaluated, which every chain command pays, about 0.1 s of CPU on this
 * machine. The build inflates it once into dist/vendor/wasm-crypto.wasm, and the bundle reads that file instead: the
 * same bytes, so the same module is instantiated.
 */
const wasmFilePlugin = {
  name: 'wasm-crypto-file',
  setup(b) {
    b.onLoad({ filter: wasmBytesModule }, async (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes('export const wasmBytes = /*#__PURE__*/ unzlibSync(base64Decode(bytes'))
        throw new Error(`build: ${args.path} no longer inflates its wasmBytes as expected`);
      const { wasmBytes } = await import('@polkadot/wasm-crypto-wasm');
      writeFileSync(join(dist, 'vendor', WASM_FILE), wasmBytes);
      return {
        contents: [
          "import { readFileSync as __readWasm } from 'node:fs';",
          "import { join as __joinWasm } from 'node:path';",
          "export { packageInfo } from './packageInfo.js';",
          // __dirname: the bundle's folder, dist/vendor/ (see VENDOR_LOADER).
          `export const wasmBytes = new Uint8Array(__readWasm(__joinWasm(__dirname, '${WASM_FILE}')));`,
        ].join('\n'),
        loader: 'js',
        resolveDir: dirname(args.path),
      };
    });
  },
};

/**
 * rxjs' package exports give Node its CommonJS build first; bundled, each of the ~90 @polkadot modules that import it
 * copied its few hundred exports into an ES module facade of its own (esbuild's __toESM), about 0.1 s of every chain
 * command's start. Its ES module build is the same library, imported as a module once, and only what is used.
 */
const rxjsEsmPlugin = {
  name: 'rxjs-esm',
  setup(b) {
    b.onResolve({ filter: /^rxjs(\/|$)/ }, (args) => {
      if (args.path !== 'rxjs') throw new Error(`build: no ES module path known for ${args.path}`);
      return { path: join(root, 'node_modules', 'rxjs', 'dist', 'esm', 'index.js') };
    });
  },
};

/**
 * dist/vendor/polkadot.js: runs dist/vendor/polkadot.cjs, every vendored package in one script, through V8's code
 * cache. Node 20 caches no compiled code for ES modules (module.enableCompileCache came in Node 22), so each chain
 * command compiled the ~2.6 MB of @polkadot code again, its top level at load and each function when first called
 * (decoding the chain's metadata calls many). A vm.Script takes the bytecode V8 wrote at the end of an earlier
 * command (dist/vendor/polkadot.cache, written once, when there was none or V8 refused it: another Node or other V8
 * flags); V8 checks that it fits this source and these flags, and compiles as before when it does not.
 */
const VENDOR_LOADER = `// Generated by scripts/build.js: see its VENDOR_LOADER.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const path = fileURLToPath(new URL('./polkadot.cjs', import.meta.url));
const cachePath = fileURLToPath(new URL('./polkadot.cache', import.meta.url));
let cachedData;
try {
  cachedData = readFileSync(cachePath);
} catch {
  cachedData = undefined;
}
const source = readFileSync(path, 'utf8');
const script = new Script(\`(function (exports, require, module, __filename, __dirname) {\${source}\\n})\`, {
  filename: path,
  cachedData,
});
const module = { exports: {} };
script.runInThisContext()(module.exports, createRequire(path), module, path, dirname(path));
if (cachedData === undefined || script.cachedDataRejected) {
  // At exit the cache holds the functions this command compiled too, not only the top level. A folder that cannot be
  // written (a read-only install) only means no cache.
  process.once('exit', () => {
    const next = \`\${cachePath}.\${process.pid}\`;
    try {
      writeFileSync(next, script.createCachedData());
      renameSync(next, cachePath);
    } catch {
      rmSync(next, { force: true });
    }
  });
}
/** What became of the cache: 'none' (there was none), 'rejected' (V8 refused it) or 'accepted'. For tests. */
export const codeCache = cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected' : 'accepted';
export default module.exports;
`;

/**
 * Each @polkadot package's packageDetect.js registers it with @polkadot/util's duplicate-version check, which warns on
 * stderr when a package is loaded twice. The bundle leaves that out: `fedtune demo` runs chopsticks in its own process,
 * and devchain/ keeps the installed @polkadot packages that chopsticks imports (the same versions, see the lockfile), so
 * both copies load there on purpose, and the check printed five warnings into the demo's output.
 */
const noPackageDetect = {
  name: 'no-package-detect',
  setup(b) {
    b.onLoad({ filter: /[\\/]@polkadot[\\/][^\\/]+[\\/]packageDetect\.js$/ }, () => ({
      contents: '',
      loader: 'js',
    }));
  },
};

/**
 * dist/vendor/: dist/vendor/polkadot.cjs holds every vendored package (CommonJS, so that it runs as a vm.Script: see
 * VENDOR_LOADER), and dist/vendor/<name>.js is each package's ES module face, its named exports (listed here by
 * importing the package) taken from the bundle.
 */
async function buildVendor() {
  mkdirSync(join(dist, 'vendor'), { recursive: true });
  await build({
    stdin: {
      contents: VENDORED.map((pkg, i) => `export * as p${i} from '${pkg}';`).join('\n'),
      resolveDir: root,
      loader: 'js',
    },
    outfile: join(dist, 'vendor', 'polkadot.cjs'),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    // The packages' packageInfo reads import.meta.url only to name their folder in a duplicate-version warning.
    logOverride: { 'empty-import-meta': 'silent' },
    logLevel: 'warning',
    nodePaths: [join(root, 'node_modules')],
    plugins: [wasmFilePlugin, rxjsEsmPlugin, noPackageDetect],
  });
  writeFileSync(join(dist, 'vendor', 'polkadot.js'), VENDOR_LOADER);
  for (const [i, pkg] of VENDORED.entries()) {
    const names = Object.keys(await import(pkg)).filter((name) => name !== 'default');
    writeFileSync(
      vendorFile(pkg),
      [
        `// Generated by scripts/build.js: ${pkg}, from the bundle in polkadot.cjs.`,
        "import bundle from './polkadot.js';",
        `export const { ${names.join(', ')} } = bundle.p${i};`,
        '',
      ].join('\n'),
    );
  }
}

/**
 * dist/vendor/<name>.js for a REQUIRED package: an ES module that requires the package and exports its names (listed
 * here by requiring it), so that no importer hands the CommonJS source to cjs-module-lexer.
 */
function requireFace(pkg) {
  const names = Object.keys(createRequire(import.meta.url)(pkg));
  writeFileSync(
    vendorFile(pkg),
    [
      `// Generated by scripts/build.js: ${pkg}, required (see REQUIRED there).`,
      "import { createRequire } from 'node:module';",
      `const pkg = createRequire(import.meta.url)('${pkg}');`,
      `export const { ${names.join(', ')} } = pkg;`,
      'export default pkg;',
      '',
    ].join('\n'),
  );
}

const yargsShim = /yargs[\\/]lib[\\/]platform-shims[\\/]esm\.mjs$/;

/**
 * Every `string-width` import in the bundle goes through asciiWidth, in front of the version that importer would have
 * had, which is required (so bundled as a module initialised on first use) only for a string that is not printable
 * ASCII: its import alone costs 40-60 ms (an Intl.Segmenter, ICU's break-iterator data; Unicode property regexes).
 * yargs' platform shim finds its locales and the project's package.json (`--version`) from its own location: in the
 * bundle that location is node_modules/yargs' as seen from dist/vendor/, as it was before.
 */
const yargsPlugin = {
  name: 'yargs-vendor',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, (args) =>
      args.namespace === 'ascii-width' ? undefined : { path: args.resolveDir, namespace: 'ascii-width' },
    );
    b.onLoad({ filter: /.*/, namespace: 'ascii-width' }, (args) => ({
      contents: [
        `import { asciiWidth } from ${JSON.stringify(join(root, 'scripts', 'ascii-width.ts'))};`,
        'let real;',
        "export default asciiWidth((...args) => (real ??= require('string-width').default)(...args));",
      ].join('\n'),
      resolveDir: args.path,
      loader: 'js',
    }));
    b.onLoad({ filter: yargsShim }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      // As installed under the project's node_modules (args.path is the real path, a linked node_modules resolved).
      const installed = args.path.slice(args.path.lastIndexOf('node_modules')).split(sep).join('/');
      const own = `new URL(${JSON.stringify(`../../${installed}`)}, import.meta.url)`;
      const patched = source.replace('fileURLToPath(import.meta.url)', `fileURLToPath(${own})`);
      if (patched === source)
        throw new Error(`build: ${args.path} no longer reads import.meta.url as expected`);
      return { contents: patched, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

/** dist/vendor/yargs.js: yargs and everything it imports as one ES module (see yargsPlugin). */
async function buildYargs() {
  await build({
    stdin: {
      contents: "export * from 'yargs';\nexport { default } from 'yargs';\n",
      resolveDir: root,
      loader: 'js',
    },
    outfile: vendorFile('yargs'),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
    plugins: [yargsPlugin],
    banner: {
      js: "import { createRequire as __vendorRequire } from 'node:module'; const require = __vendorRequire(import.meta.url);",
    },
  });
}

/**
 * Files that are the source of something else and never run: types (bin/fresh.d.ts, for the TypeScript that imports
 * fresh.js) and C (model/kernels.c, compiled into model/kernels-wasm.ts by scripts/build-kernels.js).
 */
const SOURCE_ONLY = ['.d.ts', '.c'];

const started = Date.now();
// What the build reads, hashed before it reads it (bin/fresh.js compares a path newer than the build with its hash):
// the folders, and the build's own inputs, which scripts/test.js checks too.
const hashes = Object.fromEntries(
  [...FOLDERS, ...BUILD_INPUTS].map((path) => [path, contentHash(`${root}${sep}`, path)]),
);
// A build that fails leaves no staging folder behind.
process.on('exit', () => rmSync(dist, { recursive: true, force: true }));
const entryPoints = [];
for (const folder of FOLDERS) {
  for (const entry of readdirSync(join(root, folder), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    if (SOURCE_ONLY.some((ext) => file.endsWith(ext))) continue;
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
await buildVendor();
await buildYargs();
for (const pkg of REQUIRED) requireFace(pkg);
// builtAt is when the build started reading the sources: a file saved while it ran is newer, so the build is stale.
writeFileSync(
  join(dist, 'build.json'),
  `${JSON.stringify({ folders: FOLDERS, builtAt: started, hashes })}\n`,
);
const old = join(root, `dist.old-${process.pid}`);
if (existsSync(target)) renameSync(target, old);
renameSync(dist, target);
rmSync(old, { recursive: true, force: true });
process.stdout.write(
  `build: ${entryPoints.length} files from ${FOLDERS.length} folders into dist/ in ${Date.now() - started} ms\n`,
);
