// Runs bin/fedtune.js as a user would, without blocking this process (tests keep a devnet in it).
import { runFedtune, type CliResult } from '../cli/spawn.ts';

export { BIN } from '../cli/spawn.ts';

export function fedtune(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runFedtune(args, env);
}
