// chopsticks logs through one module-level pino logger of its own; this sends its lines to the caller's logger instead.
import type { ChopsticksCore } from './chopsticks.ts';
import type { Logger } from 'pino';

const LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

// chopsticks' logger is process-wide, so its lines go to the logger of the devnet started last that is still open.
const sinks: Logger[] = [];

function forward(line: string): void {
  const sink = sinks[sinks.length - 1];
  if (!sink) return;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    sink.warn({ app: 'chopsticks' }, line.trim());
    return;
  }
  const { level, msg, time: _time, pid: _pid, hostname: _hostname, ...fields } = record;
  let method = LEVELS[Number(level)] ?? 'info';
  // A refused transaction or a bad request is the client's error, answered with its code; not the devnet's.
  if ((fields.err as { name?: unknown } | undefined)?.name === 'ResponseError' && method === 'error')
    method = 'debug';
  sink[method](fields, typeof msg === 'string' ? msg : '');
}

const patched = new WeakSet<object>();

// pino keeps an instance's destination under a symbol its children reach through their prototype; chopsticks' pino is
// its own copy, so the symbol is found by its description.
function patch(pinoLogger: object): void {
  if (patched.has(pinoLogger)) return;
  patched.add(pinoLogger);
  for (let o: object | null = pinoLogger; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    const symbol = Object.getOwnPropertySymbols(o).find((s) => s.description === 'pino.stream');
    if (symbol) {
      (pinoLogger as Record<symbol, unknown>)[symbol] = { write: forward };
      return;
    }
  }
}

/** Routes chopsticks' logs to this logger until the returned function is called. */
export function routeChopsticksLogs(core: ChopsticksCore, logger: Logger): () => void {
  patch(core.pinoLogger);
  sinks.push(logger);
  return () => {
    const index = sinks.lastIndexOf(logger);
    if (index >= 0) sinks.splice(index, 1);
  };
}
