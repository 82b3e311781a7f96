// `fedtune worker register | deregister`: a trainer's on-chain registration. The trainer runtime (`worker run`) joins this group.
import type { Argv, CommandModule } from 'yargs';
import type {
  ChainClient,
  Hex32,
  Inclusion,
  KeyringPair,
  RegisterWorker,
} from '../../pallet-bindings/index.ts';
import { loadSigner, withSigner, type SignerArgs } from '../keys.ts';
import { withChain, type ChainArgs, type GlobalArgs } from '../options.ts';
import {
  logger,
  parseNetworkId,
  print,
  submitChecked,
  usage,
  withClient,
  withNetwork,
  type NetworkArgs,
} from '../protocol.ts';
import { fields } from '../table.ts';

type Base = GlobalArgs & ChainArgs & NetworkArgs & SignerArgs;

interface RegisterArgs extends Base {
  backend: string;
  device: string;
  memory: number;
  endpoint?: string;
  consent?: boolean;
  'valid-until'?: number;
  validUntil?: number;
  batch?: string[];
}

/** Submits `registerWorker` for `signer` and waits for the protocol's verdict (also used by `worker run`). */
export async function registerWorker(
  client: ChainClient,
  signer: KeyringPair,
  network: Hex32,
  registration: RegisterWorker,
  from: number,
): Promise<Inclusion> {
  const { inclusion } = await submitChecked(
    client,
    { signer, network, calls: [{ type: 'registerWorker', ...registration }] },
    from,
  );
  return inclusion;
}

const register: CommandModule<GlobalArgs, RegisterArgs> = {
  command: 'register',
  describe: 'Register (or update) this key as a worker of a network: its capabilities and endpoint',
  builder: (y) =>
    withSigner(withNetwork(withChain(y)))
      .option('backend', {
        type: 'string',
        default: 'wasm',
        describe: 'Training backend: tensorflow, wasm, cpu',
      })
      .option('device', { type: 'string', default: 'cpu', describe: 'Device, e.g. cpu or the GPU model' })
      .option('memory', { type: 'number', default: 4096, describe: 'Memory available for training, MB' })
      .option('endpoint', {
        type: 'string',
        describe: 'Where the worker can be reached, if anywhere',
      })
      .option('consent', {
        type: 'boolean',

        describe:
          "Do not submit: print this key's signed consent (JSON) for someone to register it with --batch; needs --valid-until",
      })
      .option('valid-until', {
        type: 'number',
        describe: 'With --consent: the last block the consent is good for',
      })
      .option('batch', {
        type: 'string',
        array: true,
        describe:
          'Submit the consents in these files (from --consent) as one extrinsic, signed and paid by this key',
      })
      .conflicts('consent', 'batch') as unknown as Argv<RegisterArgs>,
  async handler(args) {
    const network = parseNetworkId(args.network);
    if (!Number.isInteger(args.memory) || args.memory < 0)
      throw usage(`--memory must be whole MB, got ${args.memory}`);
    const signer = await loadSigner(args);
    if (args.batch !== undefined) {
      const { submitConsents } = await import('./worker-batch.ts');
      return submitConsents(args, signer, network, args.batch);
    }
    const registration = {
      capabilities: { backend: args.backend, device: args.device, memoryBytes: args.memory * 1_000_000 },
      endpoint: args.endpoint ?? null,
    };
    if (args.consent) {
      if (!Number.isInteger(args.validUntil) || args.validUntil! < 0)
        throw usage('--consent needs --valid-until BLOCK: the last block the consent is good for');
      const { printConsent } = await import('./worker-batch.ts');
      return printConsent(args, signer, network, args.validUntil!, registration);
    }
    await withClient(args, logger(args), async (client) => {
      const inclusion = await registerWorker(client, signer, network, registration, args.from);
      print(args, { worker: signer.address, ...inclusion }, () =>
        fields([
          ['worker', signer.address],
          ['block', inclusion.blockNumber],
        ]),
      );
    });
  },
};

const deregister: CommandModule<GlobalArgs, Base> = {
  command: 'deregister',
  describe: 'Withdraw this key as a worker of a network',
  builder: (y) => withSigner(withNetwork(withChain(y))) as unknown as Argv<Base>,
  async handler(args) {
    const network = parseNetworkId(args.network);
    const signer = await loadSigner(args);
    await withClient(args, logger(args), async (client) => {
      const { inclusion } = await submitChecked(
        client,
        { signer, network, calls: [{ type: 'deregisterWorker' }] },
        args.from,
      );
      print(
        args,
        { worker: signer.address, ...inclusion },
        () => `deregistered ${signer.address} in block ${inclusion.blockNumber}`,
      );
    });
  },
};

/** The `worker` group; other folders add subcommands (`worker run`) through `workerSubcommands`. */
export const workerSubcommands: CommandModule<GlobalArgs, GlobalArgs>[] = [
  register as unknown as CommandModule<GlobalArgs, GlobalArgs>,
  deregister as unknown as CommandModule<GlobalArgs, GlobalArgs>,
];

export const workerCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'worker',
  describe: 'Worker commands: register on chain, run (train for a coordinator), deregister',
  builder: (y) => {
    for (const c of workerSubcommands) y.command(c);
    return y.demandCommand(
      1,
      `Name a worker command: ${workerSubcommands.map((c) => String(c.command)).join(', ')}.`,
    );
  },
  handler() {},
};
