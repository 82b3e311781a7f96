// The list of `fedtune` subcommands; each lives in its own file beside this one.
import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../options.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- yargs command modules differ in their own arguments
export const commands: CommandModule<GlobalArgs, any>[] = [];
commands.push((await import('./devnet.ts')).devnetCommand);
commands.push((await import('./dataset.ts')).datasetCommand);
commands.push((await import('./network.ts')).networkCommand);
commands.push((await import('./dao.ts')).daoCommand);
await import('./worker-run.ts'); // adds `worker run` to the worker group
commands.push((await import('./worker.ts')).workerCommand);
commands.push((await import('./coordinator.ts')).coordinatorCommand);
commands.push((await import('./chain.ts')).chainCommand);
commands.push((await import('./checkpoint.ts')).checkpointCommand);
commands.push((await import('./checkpoint.ts')).generateCommand);
commands.push((await import('./demo.ts')).demoCommand);
commands.push((await import('./explorer.ts')).explorerCommand);
