// Running `fedtune` in tests: in this process through main(argv, io) for argument and usage checks, or as a real
// process (bin/index.ts) where a test needs one: output printed by commands, signals, kills.
import { main } from '../cli/index.ts';
import { runFedtune, type CliResult } from '../bin/index.ts';

export { BIN, startFedtune, type CliResult } from '../bin/index.ts';

/** `fedtune ARGS` as a child process, without blocking this process (tests keep a devnet in it). */
export function fedtune(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runFedtune(args, env);
}

/**
 * `fedtune ARGS` in this process: its exit status and what main printed (help, version, usage and coded errors).
 * `env` is set on process.env for the call and restored after, so run these one at a time (mocha runs a file's tests
 * in order). Logs are at warn unless `env` says otherwise. `cwd`: the working folder for the call. `direct`: also
 * capture what is written to process.stdout/stderr directly (as @polkadot/api's notices are), not only through io.
 */
export async function inProcess(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  { cwd, direct = false }: { cwd?: string; direct?: boolean } = {},
): Promise<CliResult> {
  const vars: NodeJS.ProcessEnv = { FEDTUNE_LOG_LEVEL: 'warn', ...env };
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  let stdout = '';
  let stderr = '';
  const savedCwd = process.cwd();
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  const capture = (into: 'stdout' | 'stderr') =>
    ((chunk: string | Uint8Array) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      if (into === 'stdout') stdout += text;
      else stderr += text;
      return true;
    }) as typeof process.stdout.write;
  if (cwd !== undefined) process.chdir(cwd);
  if (direct) {
    process.stdout.write = capture('stdout');
    process.stderr.write = capture('stderr');
  }
  try {
    const status = await main(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
    return { status, stdout, stderr };
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
    process.chdir(savedCwd);
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
