// The `fedtune` command tree (yargs): global options, the subcommands, and one place that turns errors into exit codes.
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from './commands/index.ts';
import { LOG_LEVELS } from './log.ts';
import type { LevelWithSilent } from 'pino';
import type { GlobalArgs } from './options.ts';

export async function main(argv: string[]): Promise<void> {
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
    .command(commands as CommandModule<object, GlobalArgs>[])
    .demandCommand(1, 'Name a command; `fedtune --help` lists them.')
    .strict()
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .epilogue('Docs: README.md. Every command takes --help.')
    .fail((message, error) => {
      if (error) throw error;
      process.stderr.write(`error [E_USAGE]: ${message}\nRun with --help for usage.\n`);
      process.exit(2);
    });
  await cli.parseAsync();
}

/** Any error with a stable string `code` (each folder defines its own error type) is a user-facing error. */
function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E_[A-Z0-9_]+$/.test(code) ? code : undefined;
}

try {
  await main(hideBin(process.argv));
} catch (error) {
  const code = codeOf(error);
  if (code !== undefined) {
    process.stderr.write(`error [${code}]: ${(error as Error).message}\n`);
    // A coded error may say its own exit status (2 for bad input); otherwise 1.
    const exitCode = (error as { exitCode?: unknown }).exitCode;
    process.exitCode =
      typeof exitCode === 'number' && Number.isInteger(exitCode) && exitCode > 0 ? exitCode : 1;
  } else {
    process.stderr.write(
      `error [E_INTERNAL]: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  }
}
