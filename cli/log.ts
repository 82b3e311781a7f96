// Process-wide logger construction: pretty on a terminal, JSON lines otherwise. Libraries take a Logger as a parameter.
import { createRequire } from 'node:module';
import type { Logger, LevelWithSilent } from 'pino';

// pino (CommonJS, about 30 modules, 15-30 ms) is required when a logger is made, not when a command's file is
// imported: `fedtune <command> --help` imports the command's file and makes no logger (#13).
const require = createRequire(import.meta.url);

export type { Logger };

export { LOG_LEVELS } from './options.ts';

export interface CreateLoggerParameters {
  level?: LevelWithSilent;
  /** Human-readable output; defaults to whether stderr is a terminal. */
  pretty?: boolean;
  name?: string;
  /** Where the JSON lines go instead of stderr (then never pretty). */
  destination?: { write(text: string): void };
}

export function createLogger({
  level = 'info',
  pretty = process.stderr.isTTY === true,
  name = 'fedtune',
  destination,
}: CreateLoggerParameters = {}): Logger {
  const { pino } = require('pino') as typeof import('pino');
  if (destination !== undefined) return pino({ name, level }, destination);
  if (pretty) {
    return pino({
      name,
      level,
      transport: {
        target: 'pino-pretty',
        options: { destination: 2, colorize: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' },
      },
    });
  }
  // Logs go to stderr so that stdout stays for a command's result (tables, --json output).
  return pino({ name, level }, pino.destination(2));
}
