// The `fedtune` command tree (yargs): global options, the subcommands, and one place that turns errors into exit codes.
import yargs, { type CommandModule } from 'yargs';
import { commands, lazyCommand } from './commands/index.ts';
import { LOG_LEVELS, processIo, type GlobalArgs, type Io } from './options.ts';
import type { LevelWithSilent } from 'pino';
import { isCoded } from '../errors/index.ts';

export { processIo, type Io } from './options.ts';
export { FedtuneError } from './errors.ts';

/** A yargs validation failure (unknown option, bad choice, missing command): exit status 2. */
class UsageError extends Error {}

/** Any error with a stable string `code` (every folder's error type is an errors/ CodedError) is a user-facing error. */
function codeOf(error: unknown): string | undefined {
  return isCoded(error) ? error.code : undefined;
}

/**
 * Runs `fedtune ARGV` in this process and resolves with its exit status; it never exits the process, so tests call
 * it in-process. Help, usage errors, coded errors and the results of one-shot commands go to `io`; long-running
 * commands (devnet, coordinator, worker run, chain watch, demo) stream to the process's stdout.
 */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const cli = yargs(argv)
    .scriptName('fedtune')
    .usage(
      '$0 <command> [options]\n\nFederated pre-training and fine-tuning coordinated on a Substrate chain.',
    )
    .option('log-level', {
      choices: LOG_LEVELS,
      default: (process.env.FEDTUNE_LOG_LEVEL ?? 'info') as LevelWithSilent,
      describe: 'Log verbosity (logs go to stderr; JSON unless stderr is a terminal)',
      global: true,
    })
    .option('json', {
      type: 'boolean',
      default: false,
      describe: 'Print results as JSON for scripts',
      global: true,
    })
    .command(commands.map(lazyCommand) as CommandModule<object, GlobalArgs>[])
    .demandCommand(1, 'Name a command; `fedtune --help` lists them.')
    .strict()
    .recommendCommands()
    .exitProcess(false)
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .epilogue('Docs: README.md. Every command takes --help.')
    .fail((message, error) => {
      throw error ?? new UsageError(message);
    });
  try {
    // With a callback yargs hands back what it would print (help, version) instead of writing it.
    let output = '';
    await cli.parseAsync(argv, { io }, (_err, _args: GlobalArgs | object, text) => {
      output = text;
    });
    if (output !== '') io.stdout(output.endsWith('\n') ? output : `${output}\n`);
    return 0;
  } catch (error) {
    return report(error, io);
  }
}

function report(error: unknown, io: Io): number {
  if (error instanceof UsageError) {
    io.stderr(`error [E_USAGE]: ${error.message}\nRun with --help for usage.\n`);
    return 2;
  }
  const code = codeOf(error);
  if (code !== undefined) {
    io.stderr(`error [${code}]: ${(error as Error).message}\n`);
    // A coded error may say its own exit status (2 for bad input); otherwise 1.
    const exitCode = (error as { exitCode?: unknown }).exitCode;
    return typeof exitCode === 'number' && Number.isInteger(exitCode) && exitCode > 0 ? exitCode : 1;
  }
  io.stderr(
    `error [E_INTERNAL]: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  return 1;
}
