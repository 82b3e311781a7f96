// The `fedtune` command tree (yargs): global options, the subcommands, and one place that turns errors into exit codes.
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from './commands/index.ts';
import { FedtuneError } from './errors.ts';
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

try {
  await main(hideBin(process.argv));
} catch (error) {
  if (error instanceof FedtuneError) {
    process.stderr.write(`error [${error.code}]: ${error.message}\n`);
    process.exitCode = error.exitCode;
  } else {
    process.stderr.write(
      `error [E_INTERNAL]: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  }
}
