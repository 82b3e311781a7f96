// The list of `fedtune` subcommands: each one's name and one-line description, and how to load the file it lives in.
// Only the command that runs is loaded, so `fedtune --help` reads this list and nothing else.
//
// A new top-level command: its file exports a CommandModule (command, describe, builder, handler) whose imports of
// heavy folders (pallet-bindings, model, devchain, coordinator, worker, demo, aggregation, proto) are `import type`
// only, values taken with `await import(...)` inside the handler (eslint's fedtune/lazy-cli says where); option
// choices that come from a heavy folder go in cli/choices.ts. Then one entry below, with the same command string and
// description (test/cli/cli.test.ts checks they agree). A subcommand of an existing group is added in the group's file.
import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../options.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- yargs command modules differ in their own arguments
export type AnyCommand = CommandModule<GlobalArgs, any>;

export interface CommandEntry {
  /** The yargs command string, exactly as the loaded module spells it (test/cli.test.ts checks they agree). */
  command: string;
  describe: string;
  /** Imports the command's file; the handlers in it import the heavy folders when they run. */
  load(): Promise<AnyCommand>;
}

export const commands: CommandEntry[] = [
  {
    command: 'devnet',
    describe:
      'Run the embedded dev chain: a real Substrate runtime (Rococo Asset Hub) under chopsticks, offline',
    load: async () => (await import('./devnet.ts')).devnetCommand,
  },
  {
    command: 'dataset',
    describe: 'Corpora, sharding and dataset provenance (Merkle roots and proofs)',
    load: async () => (await import('./dataset.ts')).datasetCommand,
  },
  {
    command: 'network',
    describe: 'Create and inspect fedtune networks on chain',
    load: async () => (await import('./network.ts')).networkCommand,
  },
  {
    command: 'dao',
    describe:
      'Governance: propose rounds and membership changes, vote, list and show proposals, dispute and uphold',
    load: async () => (await import('./dao.ts')).daoCommand,
  },
  {
    command: 'worker',
    describe: 'Worker commands: register on chain, run (train for a coordinator), deregister',
    load: async () => {
      await import('./worker-run.ts'); // adds `worker run` to the worker group
      return (await import('./worker.ts')).workerCommand;
    },
  },
  {
    command: 'coordinator',
    describe:
      'Run the approved training rounds this key coordinates: tasks to workers, validated and journaled updates, aggregation, checkpoints, on-chain commits',
    load: async () => (await import('./coordinator.ts')).coordinatorCommand,
  },
  {
    command: 'chain',
    describe: 'The protocol state derived from the chain: state, audit, watch; advance (dev chains)',
    load: async () => (await import('./chain.ts')).chainCommand,
  },
  {
    command: 'checkpoint',
    describe: 'Checkpoints on chain: list, download and verify every byte, attest (members)',
    load: async () => (await import('./checkpoint.ts')).checkpointCommand,
  },
  {
    command: 'round',
    describe: 'Finalized rounds: verify one from its published updates',
    load: async () => (await import('./round.ts')).roundCommand,
  },
  {
    command: 'generate',
    describe:
      "Generate text from a language-model checkpoint, or a classifier's label distribution (a verified folder, or a certified id fetched from chain)",
    load: async () => (await import('./generate.ts')).generateCommand,
  },
  {
    command: 'demo',
    describe:
      'Run the whole network locally: dev chain, DAO, datasets, coordinator and trainers as processes, pre-training, LoRA fine-tuning, attestation, verified download',
    load: async () => (await import('./demo.ts')).demoCommand,
  },
  {
    command: 'explorer',
    describe:
      'Serve a web page showing the network: proposals, rounds and loss curves, checkpoints with in-browser verification, workers, audit',
    load: async () => (await import('./explorer.ts')).explorerCommand,
  },
];

/**
 * The yargs command for `entry`: its name and description now, its options (builder) and handler from its file only
 * when yargs runs it. yargs awaits a builder that returns a promise.
 */
export function lazyCommand(entry: CommandEntry): AnyCommand {
  return {
    command: entry.command,
    describe: entry.describe,
    builder: async (y) => {
      const { builder } = await entry.load();
      if (typeof builder === 'function') return builder(y);
      return builder === undefined ? y : y.options(builder);
    },
    handler: async (args) => (await entry.load()).handler(args),
  };
}
