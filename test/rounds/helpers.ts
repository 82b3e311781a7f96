// What the round-engine tests share: a devnet with a network (Alice the member, Ferdie the coordinator), a registered
// moby-dick dataset, registered workers, and proposals voted through — all through the real chain client.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino, type Logger } from 'pino';
import { startDevnet, type Devnet } from '../../devchain/index.ts';
import { buildManifest, loadDataset, registerDatasetFields, shardDataset } from '../../datasets/index.ts';
import { initBackend, modelConfig } from '../../model/index.ts';
import { startCoordinator, type Coordinator, type CoordinatorEvent } from '../../coordinator/index.ts';
import { verifyRound, type VerifyReport } from '../../verify/index.ts';
import { reexecuteContribution, runWorker, type RunningWorker } from '../../worker/index.ts';
import {
  connect,
  initialState,
  signerFromSeed,
  submit,
  syncState,
  type ChainClient,
  type Hex32,
  type KeyringPair,
  type ProposeRound,
  type ProtocolState,
  type RoundProposal,
} from '../../pallet-bindings/index.ts';

export const logger: Logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export interface Fixture {
  devnet: Devnet;
  client: ChainClient;
  dir: string;
  network: Hex32;
  dataset: Hex32;
  alice: KeyringPair;
  coordinator: KeyringPair;
  workers: KeyringPair[];
  close(): Promise<void>;
}

/** Devnet, network (member Alice, coordinator Ferdie), moby-dick in 6 IID shards, Bob/Charlie/Dave registered as workers. */
export async function setUp(
  name: string,
  /** More coordinators of the network (sub-coordinators), more workers: seeds; those beyond the dev accounts are funded. */
  more: { coordinators?: string[]; workers?: string[]; fund?: string[] } = {},
): Promise<Fixture & { coordinators: KeyringPair[] }> {
  await initBackend({ backend: 'auto' });
  const dir = mkdtempSync(join(tmpdir(), `fedtune-${name}-`));
  const devnet = await startDevnet({ port: 0, logger, blockMode: 'instant', dataDir: join(dir, 'chain') });
  const client = await connect({ url: devnet.url, logger });
  const [alice, coordinator, bob, charlie, dave] = await Promise.all(
    ['//Alice', '//Ferdie', '//Bob', '//Charlie', '//Dave'].map((s) => signerFromSeed(s)),
  );
  const extraCoordinators = await Promise.all((more.coordinators ?? []).map((s) => signerFromSeed(s)));
  const extraWorkers = await Promise.all((more.workers ?? []).map((s) => signerFromSeed(s)));
  if ((more.fund ?? []).length > 0) await fundAccounts(client, alice!, more.fund!);
  const created = await submit(client, {
    signer: alice!,
    network: null,
    calls: [
      {
        type: 'createNetwork',
        name,
        members: [alice!.address],
        quorum: { numerator: 1, denominator: 1 },
        votingPeriod: 1,
        coordinators: [coordinator!.address, ...extraCoordinators.map((c) => c.address)],
      },
    ],
  });
  const state0 = await syncState(client, { state: initialState(), to: created.blockNumber });
  const network = Object.keys(state0.networks)[0] as Hex32;
  const ds = loadDataset({ name: 'moby-dick' });
  const manifest = buildManifest(
    ds,
    shardDataset(ds, { scheme: 'iid', shards: 6, seed: 0, evalFraction: 0.05 }),
  );
  const manifestPath = join(dir, 'moby.json');
  writeFileSync(manifestPath, JSON.stringify(manifest));
  await submit(client, {
    signer: alice!,
    network,
    calls: [
      { type: 'registerDataset', ...registerDatasetFields(manifest, pathToFileURL(manifestPath).href) },
    ],
  });
  const workers = [bob!, charlie!, dave!, ...extraWorkers];
  await Promise.all(
    workers.map((w) =>
      submit(client, {
        signer: w,
        network,
        calls: [
          {
            type: 'registerWorker',
            capabilities: { backend: 'wasm', device: 'cpu', memoryBytes: 1e9 },
            endpoint: null,
          },
        ],
      }),
    ),
  );
  return {
    devnet,
    client,
    dir,
    network,
    dataset: manifest.root,
    alice: alice!,
    coordinator: coordinator!,
    coordinators: extraCoordinators,
    workers,
    async close() {
      await client.close();
      await devnet.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Funds accounts beyond the dev accounts from `from`, in one batch, final before it resolves. */
async function fundAccounts(client: ChainClient, from: KeyringPair, seeds: string[]): Promise<void> {
  const pairs = await Promise.all(seeds.map((s) => signerFromSeed(s)));
  const tx = client.api.tx.utility.batchAll(
    pairs.map((p) => client.api.tx.balances.transferKeepAlive(p.address, 1_000_000_000_000_000n)),
  );
  await new Promise<void>((resolve, reject) => {
    void tx
      .signAndSend(from, ({ status, dispatchError }) => {
        if (dispatchError) reject(new Error(`funding failed: ${dispatchError.toString()}`));
        else if (status.isFinalized) resolve();
      })
      .catch(reject);
  });
}

/** A tiny pre-training proposal, proposed by Alice and voted through (the vote's block decides it). */
export async function approveProposal(
  f: Fixture,
  overrides: Partial<ProposeRound> = {},
  hyper: Partial<ProposeRound['hyperParams']> = {},
): Promise<number> {
  const before = await readState(f);
  const id = before.networks[f.network]!.proposals.length;
  await submit(f.client, {
    signer: f.alice,
    network: f.network,
    calls: [
      {
        type: 'proposeRound',
        kind: 'Pretrain',
        baseCheckpoint: null,
        dataset: f.dataset,
        model: { config: JSON.stringify(modelConfig('tiny')) },
        hyperParams: {
          localSteps: 3,
          batchSize: 4,
          learningRate: 0.003,
          optimiser: 'adamw',
          fedProxMu: 0,
          aggregator: 'fedavg',
          aggregatorOptions: '{}',
          updateEncoding: 'dense',
          ...hyper,
        },
        rounds: 1,
        minWorkers: 2,
        maxWorkers: 3,
        roundDeadline: 60,
        rewardPerRound: '3000000000000',
        ...overrides,
      },
    ],
  });
  await submit(f.client, {
    signer: f.alice,
    network: f.network,
    calls: [{ type: 'vote', proposal: id, aye: true }],
  });
  return id;
}

const lastRead = new WeakMap<ChainClient, ProtocolState>();

/** The state at the finalized head, folded on from this client's last read (a replay when the chain was replaced). */
export async function readState(f: Fixture): Promise<ProtocolState> {
  const known = lastRead.get(f.client);
  const fresh = () => syncState(f.client, { state: initialState({ only: f.network }) });
  let state: ProtocolState;
  if (known?.only !== f.network) state = await fresh();
  else {
    try {
      state = await syncState(f.client, { state: known });
    } catch (error) {
      if ((error as { code?: string }).code !== 'E_STATE_NOT_CANONICAL') throw error;
      state = await fresh();
    }
  }
  lastRead.set(f.client, state);
  return state;
}

export async function proposal(f: Fixture, id: number): Promise<RoundProposal> {
  return (await readState(f)).networks[f.network]!.proposals[id] as RoundProposal;
}

export async function freeBalance(f: Fixture, address: string): Promise<bigint> {
  const account = (await f.client.api.query.system.account(address)) as unknown as {
    data: { free: { toString(): string } };
  };
  return BigInt(account.data.free.toString());
}

/** Resolves when `predicate` holds for an event, or rejects after `ms`. */
export function waitFor<E>(
  subscribe: (fn: (e: E) => void) => void,
  predicate: (e: E) => boolean,
  ms = 120_000,
) {
  return new Promise<E>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out waiting for an event')), ms);
    subscribe((e) => {
      if (predicate(e)) {
        clearTimeout(timer);
        resolve(e);
      }
    });
  });
}

/** Polls `fn` every 50 ms until it returns something truthy, which it resolves with; rejects after `ms`. */
export async function until<T>(fn: () => T | undefined | false, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The fixture's coordinator (Ferdie) and trainers (`trainers`, indexes into f.workers) running in this process. */
export async function startRunning(
  f: Fixture,
  options: { trainers?: number[]; evalExamples?: number; onEvent?: (e: CoordinatorEvent) => void } = {},
): Promise<{ coordinator: Coordinator; workers: RunningWorker[]; close(): Promise<void> }> {
  const coordinator = await startCoordinator({
    chain: f.client,
    signer: f.coordinator,
    network: f.network,
    dataDir: join(f.dir, 'coordinator'),
    port: 0,
    logger,
    evalExamples: options.evalExamples ?? 32,
    onEvent: options.onEvent,
  });
  const workers = (options.trainers ?? [0, 1]).map((i) =>
    runWorker({
      url: coordinator.url,
      signer: f.workers[i]!,
      cacheDir: join(f.dir, `worker-${i}`),
      logger,
      reconnect: { minMs: 100, maxMs: 500 },
    }),
  );
  return {
    coordinator,
    workers,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await coordinator.close();
    },
  };
}

/** `round verify` of a proposal's round against the fixture's chain, re-executing `recompute` contributions. */
export async function verifyOn(
  f: Fixture,
  proposal: number,
  round: number,
  recompute = 0,
): Promise<VerifyReport> {
  return verifyRound({
    net: (await readState(f)).networks[f.network]!,
    network: f.network,
    proposal,
    round,
    blockHash: async (n) => (await f.client.api.rpc.chain.getBlockHash(n)).toHex(),
    recompute,
    reexecute: reexecuteContribution,
    cacheDir: join(f.dir, 'verify-cache'),
    logger,
  });
}
