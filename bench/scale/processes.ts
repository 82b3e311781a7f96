// bench scale's child processes: a bench/scale script under tsx with its JSON lines collected as they come, stopping
// one, and a process's peak resident memory.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

/** Every wait is bounded, so a stuck round fails the bench instead of hanging it. */
export const WAIT_MS = 240_000;

export type Line = { at: number; cpuMs?: number; type: string } & Record<string, unknown>;

export interface Child {
  proc: ChildProcess;
  lines: Line[];
  /** Resolves once `found` holds; throws if the child exits first or WAIT_MS pass. */
  until(what: string, found: () => boolean): Promise<void>;
  /** What the child said so far: lines by type, the last one, its stderr's tail. */
  summary(): string;
  /** The first line of this type, if any. */
  event(type: string): Line | undefined;
}

/** A child process running a bench/scale script under tsx, its JSON lines collected as they come. */
export function child(script: string, args: string[], flags: string[] = []): Child {
  const proc = spawn(
    process.execPath,
    [...flags, '--import', 'tsx', fileURLToPath(new URL(`./${script}`, import.meta.url)), ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: Line[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  createInterface({ input: proc.stdout! }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text) as Line);
    } catch {
      stderr = (stderr + text).slice(-4000);
    }
  });
  const summary = () => {
    const counts: Record<string, number> = {};
    for (const l of lines) counts[l.type] = (counts[l.type] ?? 0) + 1;
    return `${script}: ${JSON.stringify(counts)}; last ${JSON.stringify(lines.at(-1) ?? null)}; stderr ${stderr.slice(-1000)}`;
  };
  const until = async (what: string, found: () => boolean) => {
    const limit = Date.now() + WAIT_MS;
    while (!found()) {
      if (proc.exitCode !== null)
        throw new Error(`bench scale: ${script} exited (${proc.exitCode}) waiting for ${what}: ${summary()}`);
      if (Date.now() > limit) throw new Error(`bench scale: timed out waiting for ${what}: ${summary()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  return { proc, lines, until, summary, event: (type) => lines.find((l) => l.type === type) };
}

export async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** The most resident memory a process has had (Linux: VmHWM), in bytes; null where /proc is not there. */
export function peakRss(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
