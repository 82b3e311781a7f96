// The demo's way of running things: one-shot `fedtune` commands, long-running CLI services, polling, and its errors.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { BIN, runFedtune } from '../bin/index.ts';
import { CodedError } from '../errors/index.ts';

export class DemoError extends CodedError {}

/** Runs one CLI command to completion; a non-zero exit is a DemoError carrying its stderr. */
export async function fedtune(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { status, stdout, stderr } = await runFedtune(args, env, { timeoutMs: 10 * 60_000 });
  if (status === 0) return stdout;
  throw new DemoError(
    'E_DEMO_STEP',
    `\`fedtune ${args.join(' ')}\` exited ${status}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
  );
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
