// Running `fedtune` as a separate process, as a person would: what the demo drives and what tests that need a real
// process (kills, signals, a devnet of its own) call. Outside cli/, so that demo/ and tests import it without a cycle.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** The package root: the nearest folder above this file with a package.json (this file also runs from dist/bin/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}

export const BIN = join(packageRoot(), 'bin', 'fedtune.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `fedtune ARGS` with `env` over this process's environment (logs at warn unless `env` says otherwise). */
export function startFedtune(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, FEDTUNE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * Runs `fedtune ARGS` to completion (see startFedtune), collecting its output. After `timeoutMs` it is killed with
 * SIGKILL together with every process it started (the demo's coordinator and trainers), see runProcessGroup.
 */
export function runFedtune(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  { timeoutMs = 90_000 }: { timeoutMs?: number } = {},
): Promise<CliResult> {
  return runProcessGroup(process.execPath, [BIN, ...args], { FEDTUNE_LOG_LEVEL: 'warn', ...env }, timeoutMs);
}

/**
 * Runs `command ARGS` to completion in a process group of its own, collecting its output; after `timeoutMs` the whole
 * group gets SIGKILL, so that nothing it started outlives it (a SIGKILL to the child alone would orphan its children).
 */
export function runProcessGroup(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}
