// Watches a coordinator from outside, as any operator could: polls its /health and /metrics and keeps the figures
// as time series, so the coordinator page charts them from the explorer's start, not from when a page was opened.
import type { Logger } from 'pino';
import type { CoordinatorSample, CoordinatorView } from './view.ts';
import { reasonOf } from './errors.ts';

/** Samples kept: an hour at the default 5 s poll. */
const MAX_SAMPLES = 720;

/**
 * Prometheus text format → `name` summed over its labels, and `name{labels}` per labelled series. Comment and
 * malformed lines are skipped: a figure we cannot read is left out of the charts, not guessed.
 */
export function parsePrometheus(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    const name = m[1]!;
    out[name] = (out[name] ?? 0) + value;
    if (m[2] !== undefined && m[2] !== '{}') out[`${name}${m[2]}`] = value;
  }
  return out;
}

export interface CoordinatorWatch {
  view(): CoordinatorView;
  /** Called after each poll. */
  onSample(listener: () => void): () => void;
  close(): void;
}

async function getText(url: string, timeoutMs: number): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`HTTP ${res.status} from ${url}`);
  return res.text();
}

export function watchCoordinator(params: {
  url: string;
  intervalMs?: number;
  logger: Logger;
}): CoordinatorWatch {
  const base = params.url.replace(/\/+$/, '');
  const intervalMs = params.intervalMs ?? 5_000;
  const samples: CoordinatorSample[] = [];
  const listeners = new Set<() => void>();
  let error: string | null = null;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  const poll = async () => {
    try {
      const [health, metrics] = await Promise.all([
        getText(`${base}/health`, intervalMs),
        getText(`${base}/metrics`, intervalMs),
      ]);
      const connectedWorkers = (JSON.parse(health) as { connectedWorkers?: unknown }).connectedWorkers;
      samples.push({
        t: Date.now(),
        connectedWorkers: typeof connectedWorkers === 'number' ? connectedWorkers : null,
        metrics: parsePrometheus(metrics),
      });
      if (samples.length > MAX_SAMPLES) samples.shift();
      if (error !== null) params.logger.info({ url: base }, 'coordinator answers again');
      error = null;
    } catch (cause) {
      const reason = reasonOf(cause);
      if (error === null) params.logger.warn({ url: base, reason }, 'coordinator unreachable');
      error = `the coordinator at ${base} does not answer (${reason}): is \`fedtune coordinator\` running there? --coordinator takes its HTTP base URL, e.g. http://127.0.0.1:7300`;
    }
    for (const listener of listeners) listener();
    if (!closed) timer = setTimeout(() => void poll(), intervalMs);
  };
  void poll();

  return {
    view: () => ({ url: base, error, samples }),
    onSample(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      closed = true;
      clearTimeout(timer);
      listeners.clear();
    },
  };
}
