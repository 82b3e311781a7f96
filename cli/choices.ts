// Option choices and defaults that the commands' --help shows, as plain data so help loads no library; each is
// typed by the library's own type, and test/cli.test.ts checks it equals the library's value.
import type { BlockMode } from '../devchain/index.ts';
import type { BackendChoice, PresetName } from '../model/index.ts';

/** model/'s BACKEND_CHOICES. */
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

/** The names of model/'s PRESETS. */
export const PRESET_NAMES: readonly PresetName[] = ['tiny', 'small', 'medium', 'large', 'xl'];

/** devchain/'s BLOCK_MODES. */
export const BLOCK_MODES: readonly BlockMode[] = ['instant', 'batch', 'manual'];

/** devchain/'s DEFAULT_DEVNET_PORT. */
export const DEFAULT_DEVNET_PORT = 9944;
