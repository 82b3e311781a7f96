// Backend selection: tfjs-node-gpu, then tfjs-node (optional, and only with their native binding), then wasm (XNNPACK and
// fedtune's kernels), then the pure JS cpu backend.
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import os from 'node:os';
import type { Logger } from 'pino';
import { ModelError } from './errors.ts';
import { installWasmKernels } from './wasm-kernels.ts';
import { KERNELS_VERSION, kernelsActive, registerFedtuneKernels } from './kernels.ts';

export type BackendChoice = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

export interface InitBackendParameters {
  backend?: BackendChoice;
  logger?: Logger;
  /** wasm only: threads to ask for where the threaded build loads (it does not under Node today). */
  threads?: number;
}

export interface InitBackendResult {
  /** tfjs's name for the backend: 'tensorflow', 'wasm' or 'cpu'. */
  name: string;
  threads: number;
  /** For 'tensorflow': which package provided it. */
  provider?: string;
}

let wasmPathsSet = false;

/**
 * Whether an installed tfjs-node package has its native binding (lib/napi-v<N>/tfjs_binding.node, which its install
 * downloads with libtensorflow). Without it, importing the package registers its ~155 kernels, printing a warning
 * for each that the other package registered first, and then fails: so it is not imported at all.
 */
function hasNativeBinding(pkg: string): boolean {
  try {
    const dir = dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
    const lib = join(dir, 'lib');
    return readdirSync(lib).some(
      (d) => d.startsWith('napi-v') && existsSync(join(lib, d, 'tfjs_binding.node')),
    );
  } catch {
    return false; // not installed, or no lib/ folder
  }
}

async function tryTensorflow(logger: Logger | undefined): Promise<string | undefined> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    if (!hasNativeBinding(pkg)) {
      logger?.debug({ pkg }, 'backend package not installed, or installed without its native binding');
      continue;
    }
    try {
      // A variable specifier: these packages are optional and usually absent, so nothing may resolve them statically.
      const spec: string = pkg;
      await import(spec);
      if (await tf.setBackend('tensorflow')) return pkg;
      logger?.debug({ pkg }, 'backend package loaded but the tensorflow backend did not initialise');
    } catch (err) {
      logger?.debug({ pkg, err: (err as Error).message }, 'backend package not available');
    }
  }
  return undefined;
}

async function tryWasm(threads: number | undefined, logger: Logger | undefined): Promise<boolean> {
  try {
    if (!wasmPathsSet) {
      // Node loads the .wasm binaries from the package's own dist folder, given as a file path prefix.
      const require = createRequire(import.meta.url);
      setWasmPaths(
        join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/',
      );
      wasmPathsSet = true;
    }
    if (threads !== undefined) setThreadsCount(threads);
    const ok = await tf.setBackend('wasm');
    if (ok) {
      installWasmKernels();
      registerFedtuneKernels();
    }
    return ok;
  } catch (err) {
    logger?.debug({ err: (err as Error).message }, 'wasm backend not available');
    return false;
  }
}

/** The last initBackend call, settled or not: calls in one process run one after the other. */
let initialising: Promise<unknown> = Promise.resolve();

/**
 * Picks and initialises the TensorFlow.js backend, logs the choice and returns it. Calls made at the same time (commands
 * run side by side in one process, as the demo runs them) wait for each other: tfjs' setBackend, called again before
 * the first call has initialised the backend, makes a second instance and answers the first caller false.
 */
export function initBackend(parameters: InitBackendParameters = {}): Promise<InitBackendResult> {
  const run = initialising.then(() => initBackendNow(parameters));
  initialising = run.catch(() => undefined);
  return run;
}

async function initBackendNow({
  backend = 'auto',
  logger,
  threads,
}: InitBackendParameters = {}): Promise<InitBackendResult> {
  if (!BACKEND_CHOICES.includes(backend)) {
    throw new ModelError(
      'E_BACKEND_UNKNOWN',
      `unknown backend "${backend}"; expected one of ${BACKEND_CHOICES.join(', ')}`,
    );
  }
  let result: InitBackendResult | undefined;
  if (backend === 'auto' || backend === 'tensorflow') {
    const provider = await tryTensorflow(logger);
    if (provider !== undefined) result = { name: 'tensorflow', threads: os.cpus().length, provider };
    else if (backend === 'tensorflow') {
      throw new ModelError(
        'E_BACKEND_UNAVAILABLE',
        'the tensorflow backend needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node installed (their install downloads libtensorflow)',
      );
    }
  }
  if (result === undefined && (backend === 'auto' || backend === 'wasm')) {
    if (await tryWasm(threads, logger)) result = { name: 'wasm', threads: getThreadsCount() };
    else if (backend === 'wasm')
      throw new ModelError('E_BACKEND_UNAVAILABLE', 'the wasm backend failed to initialise');
  }
  if (result === undefined) {
    if (!(await tf.setBackend('cpu')))
      throw new ModelError('E_BACKEND_UNAVAILABLE', 'the cpu backend failed to initialise');
    result = { name: 'cpu', threads: 1 };
  }
  await tf.ready();
  logger?.info(
    { backend: result.name, threads: result.threads, provider: result.provider, requested: backend },
    'tensorflow.js backend',
  );
  return result;
}

/** The active backend's name. */
export function currentBackend(): string {
  return tf.getBackend();
}

/**
 * The active backend with what decides its arithmetic: 'wasm-simd-k1' (SIMD, with fedtune's kernels of that version:
 * kernels.ts), 'wasm-k1' (tfjs's build without SIMD, with the kernels), 'wasm-simd', 'wasm' (without the kernels:
 * tfjs's SIMD and scalar builds round differently, so they are different backends for a re-execution), 'cpu',
 * 'tensorflow'.
 */
export async function backendFlavour(): Promise<string> {
  const name = tf.getBackend();
  if (name !== 'wasm') return name;
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  const threads = getThreadsCount();
  const kernels = kernelsActive() ? `-k${KERNELS_VERSION}` : '';
  return `wasm${simd ? '-simd' : ''}${threads > 1 ? `-threads${threads}` : ''}${kernels}`;
}
