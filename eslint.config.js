// Lint rules for the whole package: typescript-eslint's recommended set, strict about `any` at boundaries, and three
// local rules for the layout: folders meet only through their index.ts, lower folders import only the folders below
// them, and the CLI loads heavy folders lazily.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { dirname, join, normalize, relative, sep } from 'node:path';

const ROOT = dirname(new URL(import.meta.url).pathname);

/** The top-level folder a path (relative to the package root) lies in, or null for a file at the root. */
const topFolder = (path) => (path.includes(sep) ? path.split(sep)[0] : null);

/** Calls `check(node, source)` for every relative import, re-export and literal dynamic import of a file. */
function eachRelativeImport(check) {
  const visit = (node) => {
    const source = node.source;
    if (source?.type === 'Literal' && typeof source.value === 'string' && source.value.startsWith('.'))
      check(node, source.value);
  };
  return {
    ImportDeclaration: visit,
    ExportNamedDeclaration: visit,
    ExportAllDeclaration: visit,
    ImportExpression: visit,
  };
}

const boundaries = {
  meta: {
    type: 'problem',
    docs: {
      description:
        "Outside folder X, import only X/index.ts (X's public face). A test folder test/X may reach into X.",
    },
    schema: [],
  },
  create(context) {
    const file = relative(ROOT, context.filename);
    const from = topFolder(file);
    if (from === null) return {};
    // test/X/... mirrors X/ and may test its internals; top-level test files mirror nothing.
    const mirrored = from === 'test' ? topFolder(relative('test', file)) : null;
    return eachRelativeImport((node, spec) => {
      const target = normalize(join(dirname(file), spec));
      const to = topFolder(target);
      if (to === null || to === from || to === mirrored) return;
      if (target === join(to, 'index.ts')) return;
      context.report({
        node: node.source,
        message: `${spec} reaches into ${to}/: import ${to}/index.ts, its public face (export what is needed there)`,
      });
    });
  },
};

/**
 * Who may import whom, for the lower folders (docs/architecture.md); the folders above them (worker, coordinator,
 * demo, explorer, cli, bin, bench, test) may import any folder through its index.ts. errors/ is at the bottom: every
 * folder may import it, and it imports nothing of ours.
 */
const MAY_IMPORT = {
  errors: [],
  devchain: ['errors'],
  merkle: ['errors'],
  proto: ['errors'],
  aggregation: ['errors'],
  model: ['errors'],
  'pallet-bindings': ['errors', 'merkle'],
  datasets: ['errors', 'merkle', 'pallet-bindings'],
  checkpoints: ['errors', 'pallet-bindings'],
};

const layers = {
  meta: {
    type: 'problem',
    docs: { description: 'A lower folder imports only the folders below it (MAY_IMPORT); no folder cycle' },
    schema: [],
  },
  create(context) {
    const from = topFolder(relative(ROOT, context.filename));
    const allowed = MAY_IMPORT[from];
    if (allowed === undefined) return {};
    const file = relative(ROOT, context.filename);
    return eachRelativeImport((node, spec) => {
      const to = topFolder(normalize(join(dirname(file), spec)));
      if (to === null || to === from || allowed.includes(to)) return;
      context.report({
        node: node.source,
        message: `${from}/ may import only ${allowed.length ? allowed.map((f) => `${f}/`).join(', ') : 'nothing of ours'}, not ${to}/ (docs/architecture.md)`,
      });
    });
  },
};

/** Folders whose import costs seconds (TensorFlow.js, @polkadot/api, chopsticks, ws, protobufjs). */
const HEAVY = [
  'pallet-bindings',
  'model',
  'devchain',
  'coordinator',
  'worker',
  'demo',
  'aggregation',
  'proto',
  'verify',
];

const lazyCli = {
  meta: {
    type: 'problem',
    docs: {
      description:
        'cli/ imports heavy folders as types only; values load inside handlers with await import(), so help stays fast',
    },
    schema: [],
  },
  create(context) {
    const file = relative(ROOT, context.filename);
    if (topFolder(file) !== 'cli') return {};
    return eachRelativeImport((node, spec) => {
      if (node.type === 'ImportExpression' || node.importKind === 'type' || node.exportKind === 'type')
        return;
      const to = topFolder(normalize(join(dirname(file), spec)));
      if (!HEAVY.includes(to)) return;
      context.report({
        node: node.source,
        message: `${to}/ is heavy: \`import type\` here, and take values with \`await import('${spec}')\` in the handler`,
      });
    });
  },
};

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'dist/**',
      'dist.next-*/**',
      'dist.old-*/**',
      'out/**',
      'demo-out*/**',
      '**/*.cjs',
      'explorer/dist/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
    plugins: { fedtune: { rules: { boundaries, layers, 'lazy-cli': lazyCli } } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      'fedtune/boundaries': 'error',
      'fedtune/layers': 'error',
      'fedtune/lazy-cli': 'error',
    },
  },
);
