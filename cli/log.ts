// Process-wide logger construction: pretty on a terminal, JSON lines otherwise. Libraries take a Logger as a parameter.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export { LOG_LEVELS } from './options.ts';

export interface CreateLoggerParameters {
  level?: LevelWithSilent;
  /** Human-readable output; defaults to whether stderr is a terminal. */
  pretty?: boolean;
  name?: string;
}

export function createLogger({
  level = 'info',
  pretty = process.stderr.isTTY === true,
  name = 'fedtune',
}: CreateLoggerParameters = {}): Logger {
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
