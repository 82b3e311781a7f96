// What every benchmark shares: the figure type, timing helpers and the machine's reference measurements.
import { performance } from 'node:perf_hooks';

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The reference this figure is compared with, measured in the same process (same unit). */
  ref?: number;
  /** value / ref. */
  ratio?: number;
  /** Free-form context: sizes, backend, mode. */
  note?: string;
}

export interface BenchContext {
  /** A shorter run for smoke checks; the figures are noisier. */
  quick: boolean;
  report(figure: Figure): void;
  /** Progress for a person watching; goes to stderr. */
  progress(message: string): void;
}

export type Bench = (ctx: BenchContext) => Promise<void>;

/**
 * Runs fn repeatedly until minMs has passed (at least minRuns times) and returns the median seconds per run: wall
 * seconds, or with `clock: 'cpu'` this process's CPU seconds (user + system), which a shared machine's load moves less.
 */
export async function timeIt(
  fn: () => unknown,
  {
    minMs = 300,
    minRuns = 3,
    clock = 'wall',
  }: { minMs?: number; minRuns?: number; clock?: 'wall' | 'cpu' } = {},
): Promise<number> {
  const now =
    clock === 'cpu'
      ? () => {
          const c = process.cpuUsage();
          return (c.user + c.system) / 1000;
        }
      : () => performance.now();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < minRuns || performance.now() - start < minMs) {
    const t0 = now();
    await fn();
    samples.push((now() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

/** The machine's memory bandwidth reference: GB/s of a large Float32Array.set copy (bytes read). */
export async function memcpyGBs(bytes = 256 * 1024 * 1024): Promise<number> {
  const src = new Float32Array(bytes / 4).fill(1.5);
  const dst = new Float32Array(bytes / 4);
  const seconds = await timeIt(() => dst.set(src), { minMs: 500 });
  return bytes / seconds / 1e9;
}

export function withRatio(figure: Figure, ref: number | undefined): Figure {
  return ref === undefined || ref === 0 ? figure : { ...figure, ref, ratio: figure.value / ref };
}

export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const scale = 10 ** Math.max(0, digits - Math.ceil(Math.log10(Math.abs(value))));
  return Math.round(value * scale) / scale;
}
