// The demo's way of running things: one-shot `fedtune` commands in this process, long-running CLI services, polling,
// and its errors.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { BIN, type CliResult } from '../bin/index.ts';
import { main } from '../cli/index.ts';
import { CodedError } from '../errors/index.ts';

export class DemoError extends CodedError {}

/** The most a one-shot command may take (as when each was a process of its own, killed after it). */
const COMMAND_MS = 10 * 60_000;

/**
 * Runs `fedtune ARGS FLAGS` in this process through the CLI's main, its results, messages and logs captured, as a
 * separate process's stdout and stderr would be. A process of its own cost each command 3–5 CPU-seconds before its work
 * (evaluating TensorFlow.js and @polkadot/api, sr25519 tables); here that is paid once. `flags` name what the command
 * would otherwise read from the environment (`--chain`, `--network`): commands run at the same time, so nothing is set
 * on process.env. Logs at warn, into the captured stderr.
 */
export async function runInProcess(args: string[], flags: readonly string[] = []): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: (text: string) => void (stdout += text),
    stderr: (text: string) => void (stderr += text),
    logs: (text: string) => void (stderr += text),
  };
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), COMMAND_MS)));
  try {
    const status = await Promise.race([main([...args, ...flags, '--log-level', 'warn'], io), timedOut]);
    if (status === null) stderr += `still running after ${COMMAND_MS / 1000} s\n`;
    return { status, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** What @polkadot/api prints when a connection closed by its own client still had a subscription being set up. */
const NORMAL_CLOSURE = /disconnected from \S+: 1000:: Normal Closure/;

/**
 * Drops @polkadot/api's "… disconnected from ws://…: 1000:: Normal Closure" line, written straight to console.error when
 * a command closes its connection while a subscription is still being set up (a command in a process of its own had
 * exited by then): the command closed it, so it is no fault, and the demo's output stays its own. Returns the undo.
 */
export function quietNormalClosures(): () => void {
  const error = console.error;
  console.error = (...args: unknown[]) => {
    if (!args.some((a) => typeof a === 'string' && NORMAL_CLOSURE.test(a))) error.apply(console, args);
  };
  return () => {
    console.error = error;
  };
}

/** `args` as a person would type them, and the last lines of what the command wrote to stderr. */
export function stepFailed({ status, stderr }: CliResult, args: string[]): DemoError {
  return new DemoError(
    'E_DEMO_STEP',
    `\`fedtune ${args.join(' ')}\` exited ${status}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
  );
}

/** Runs one CLI command to completion (runInProcess); a non-zero status is a DemoError carrying its stderr. */
export async function fedtune(args: string[], flags: readonly string[] = []): Promise<string> {
  const result = await runInProcess(args, flags);
  if (result.status === 0) return result.stdout;
  throw stepFailed(result, args);
}

export const json = <T>(text: string): T => JSON.parse(text) as T;

export interface Service {
  child: ChildProcess;
  onLine(fn: (line: string) => void): void;
  stop(): Promise<void>;
}

/** A long-running CLI process (coordinator, worker): stdout lines to the caller, stderr to a log file. */
export function service(args: string[], env: NodeJS.ProcessEnv, logFile: string): Service {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, FEDTUNE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.pipe(createWriteStream(logFile));
  const listeners: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => listeners.forEach((fn) => fn(line)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    onLine: (fn) => listeners.push(fn),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls fn every `everyMs` until it answers true; E_DEMO_TIMEOUT after ms. */
export async function until(
  fn: () => Promise<boolean>,
  ms: number,
  what: string,
  everyMs = 500,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new DemoError('E_DEMO_TIMEOUT', `${what} within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
