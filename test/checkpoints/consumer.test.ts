// The consumer commands against a checkpoint committed on a devnet: `fedtune checkpoint list | attest | download |
// verify` and `fedtune generate`, run through the CLI's main() in this process (the README walkthrough runs each of
// them as a process). The round is opened and finalized through pallet-bindings directly (no coordinator engine):
// the checkpoint is a real tiny model served from a store.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { pino } from 'pino';
import {
  downloadCheckpoint,
  httpSource,
  openStore,
  serveCheckpoints,
  type CheckpointServer,
  type CheckpointStore,
  type Provenance,
} from '../../checkpoints/index.ts';
import {
  buildManifest,
  datasetForManifest,
  loadDataset,
  shardDataset,
  type DatasetManifest,
} from '../../datasets/index.ts';
import { startDevnet, type Devnet } from '../../devchain/index.ts';
import {
  createModel,
  disposeModel,
  initBackend,
  modelConfig,
  modelToSafetensors,
  sidecarConfig,
} from '../../model/index.ts';
import {
  connect,
  initialState,
  signerFromSeed,
  submit,
  syncState,
  type ChainClient,
  type Hex32,
  type KeyringPair,
  type NetworkState,
  type RoundProposal,
} from '../../pallet-bindings/index.ts';
import { evaluateHeldOut } from '../../coordinator/index.ts';
import { inProcess } from '../run-cli.ts';

const logger = pino({ level: 'silent' });
const EVAL_EXAMPLES = 32;
const REWARD = '1000000000000';

interface Row {
  id: string;
  kind: string;
  parent: string | null;
  evalLoss: number;
  attestations: { positive: number; total: number };
  refusals: { account: string; code: string | null; block: number }[];
  certified: boolean;
}

describe('fedtune checkpoint list | attest | download | verify, fedtune generate', function () {
  this.timeout(300_000);
  let dir: string;
  let devnet: Devnet;
  let client: ChainClient;
  let store: CheckpointStore;
  let server: CheckpointServer;
  let alice: KeyringPair, bob: KeyringPair, charlie: KeyringPair;
  let network: Hex32;
  let datasetRoot: string;
  let id: Hex32;
  let evalLoss: number;
  let env: NodeJS.ProcessEnv;

  /** `fedtune ARGS` through main(argv, io): its exit status and what it printed. */
  const fedtune = (args: string[], vars: NodeJS.ProcessEnv) =>
    inProcess(args, { FEDTUNE_LOG_LEVEL: 'error', ...vars });
  async function cli(args: string[]) {
    const got = await fedtune(args, env);
    expect(got.status, `${args.join(' ')}\n${got.stderr}`).to.equal(0);
    return got.stdout;
  }
  async function net(): Promise<NetworkState> {
    return (await syncState(client, { state: initialState({ only: network }) })).networks[network]!;
  }
  async function list(extra: string[] = []): Promise<Row[]> {
    return JSON.parse(await cli(['checkpoint', 'list', '--json', ...extra])) as Row[];
  }

  before(async () => {
    await initBackend({ backend: 'auto' });
    dir = mkdtempSync(join(tmpdir(), 'fedtune-consumer-'));
    devnet = await startDevnet({ port: 0, logger, blockMode: 'instant' });
    client = await connect({ url: devnet.url, logger });
    [alice, bob, charlie] = await Promise.all(
      ['//Alice', '//Bob', '//Charlie'].map((s) => signerFromSeed(s)),
    );
    env = { FEDTUNE_CHAIN: devnet.url };

    // A network of three members where certification takes two positive attestations; a dataset; a round voted in.
    network = (
      JSON.parse(
        await cli([
          'network',
          'create',
          '--seed',
          '//Alice',
          '--name',
          'consumers',
          '--member',
          alice!.address,
          bob!.address,
          charlie!.address,
          '--quorum',
          '2/3',
          '--voting-period',
          '3',
          '--json',
        ]),
      ) as { network: Hex32 }
    ).network;
    env.FEDTUNE_NETWORK = network;
    const manifestPath = join(dir, 'moby.json');
    await cli(['dataset', 'shard', 'moby-dick', '--scheme', 'iid', '--shards', '2', '--out', manifestPath]);
    datasetRoot = (
      JSON.parse(await cli(['dataset', 'register', manifestPath, '--seed', '//Alice', '--json'])) as {
        root: string;
      }
    ).root;
    const config = modelConfig('tiny');
    const proposal = (
      JSON.parse(
        await cli([
          'dao',
          'propose-round',
          '--seed',
          '//Alice',
          '--dataset',
          datasetRoot,
          '--model-config',
          JSON.stringify(config),
          // Bob's transfer below must stay within his share (120 of 200 samples) of the round's reward.
          '--reward',
          '2000000000000',
          '--json',
        ]),
      ) as { proposal: number }
    ).proposal;
    for (const seed of ['//Alice', '//Bob'])
      await cli(['dao', 'vote', String(proposal), 'aye', '--seed', seed]);
    while ((await net()).proposals[proposal]!.status === 'voting') await devnet.newBlock();
    expect((await net()).proposals[proposal]!.status).to.equal('approved');

    // The round's checkpoint: a real tiny model, cut into several chunks, served by a checkpoint server. Its loss
    // is measured as the coordinator measures it, on the same evenly spaced held-out examples.
    const model = createModel(config, { seed: 1 });
    const bytes = modelToSafetensors(model);
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as DatasetManifest;
    evalLoss = (
      await evaluateHeldOut(model, datasetForManifest(manifest), manifest, { maxExamples: EVAL_EXAMPLES })
    ).loss;
    disposeModel(model);
    store = await openStore(join(dir, 'store'));
    const put = await store.put(bytes, {
      model: sidecarConfig(config) as never,
      parent: null,
      proposal,
      round: 0,
      chunkSize: 16 * 1024,
    });
    expect(put.manifest.chunks.length).to.be.greaterThan(2);
    id = put.id as Hex32;
    server = await serveCheckpoints({ store, port: 0 });
    await submit(client, {
      signer: alice!,
      network,
      calls: [
        { type: 'openRound', proposal, coordinatorEndpoint: server.url },
        {
          type: 'finalizeRound',
          proposal,
          round: 0,
          checkpoint: { id, bytes: bytes.length, uri: server.url },
          updatesRoot: `0x${'11'.repeat(32)}`,
          datasetShardsRoot: `0x${'22'.repeat(32)}`,
          contributors: [
            { account: bob!.address, samples: 120, shards: [0] },
            { account: charlie!.address, samples: 80, shards: [1] },
          ],
          metrics: { trainLoss: 5.5, evalLoss, extra: [{ name: 'bitsPerByte', value: evalLoss / Math.LN2 }] },
        },
      ],
      transfers: [{ dest: bob!.address, value: REWARD }],
    });
  });

  after(async () => {
    await server?.close();
    await client?.close();
    await devnet?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists the checkpoint; refuses it to generate and an unknown or malformed id', async () => {
    const rows = await list();
    expect(rows).to.have.length(1);
    expect(rows[0]).to.deep.include({ id, kind: 'pretrain', parent: null, certified: false });
    expect(rows[0]!.attestations).to.deep.equal({ positive: 0, total: 0 });
    expect(rows[0]!.evalLoss).to.be.closeTo(evalLoss, 1e-9);
    expect(await list(['--certified'])).to.deep.equal([]);

    const refused = await fedtune(
      ['generate', '--checkpoint', id, '--prompt', 'x', '--cache', join(dir, 'cache')],
      env,
    );
    expect(refused.status).to.equal(1);
    expect(refused.stderr).to.match(/E_NOT_CERTIFIED/);

    const unknown = await fedtune(
      ['checkpoint', 'download', `0x${'ab'.repeat(32)}`, '--out', join(dir, 'unknown')],
      env,
    );
    expect(unknown.status).to.equal(1);
    expect(unknown.stderr).to.match(/E_UNKNOWN_CHECKPOINT/);
    expect(existsSync(join(dir, 'unknown', 'model.safetensors'))).to.equal(false);

    const malformed = await fedtune(['checkpoint', 'download', '0x12', '--out', join(dir, 'x')], env);
    expect(malformed.status).to.equal(2);
    expect(malformed.stderr).to.match(/E_USAGE/);
  });

  it('certifies at quorum: one yes is not enough, a no does not count, the second yes certifies', async () => {
    const attest = async (seed: string, extra: string[] = []) =>
      JSON.parse(
        await cli([
          'checkpoint',
          'attest',
          id,
          // This round was made by hand, not by a coordinator: nothing is published to verify it against.
          '--no-verify',
          '--seed',
          seed,
          '--out',
          join(dir, `attest-${seed.slice(2)}`),
          '--max-examples',
          String(EVAL_EXAMPLES),
          '--json',
          ...extra,
        ]),
      ) as {
        evalLoss: number;
        reportedEvalLoss: number;
        verdict: boolean;
        code: string | null;
        certified: boolean;
      };

    const first = await attest('//Alice');
    // The member scored the same held-out examples as the committed loss: the same number.
    expect(first.evalLoss).to.be.closeTo(evalLoss, 1e-4);
    expect(first.reportedEvalLoss).to.equal(evalLoss);
    expect(first).to.include({ verdict: true, certified: false });

    const no = await attest('//Charlie', ['--max-loss', '0.01']);
    // The loss check failed: the "no" carries its code on chain, and the list shows it.
    expect(no).to.include({ verdict: false, code: 'E_EVAL_MISMATCH', certified: false });
    const row = (await list())[0]!;
    expect(row).to.deep.include({ certified: false, attestations: { positive: 1, total: 2 } });
    expect(row.refusals.map((r) => [r.account, r.code])).to.deep.equal([
      [charlie!.address, 'E_EVAL_MISMATCH'],
    ]);

    const again = await fedtune(['checkpoint', 'attest', id, '--seed', '//Alice'], env);
    expect(again.status).to.equal(1);
    expect(again.stderr).to.match(/E_DOUBLE_ATTEST/);

    expect(await attest('//Bob')).to.include({ verdict: true, certified: true });
    const certified = await list(['--certified']);
    expect(certified.map((r) => r.id)).to.deep.equal([id]);
    expect(certified[0]!.attestations).to.deep.equal({ positive: 2, total: 3 });
  });

  it('downloads with config and provenance that match the chain, verifies, generates, catches a flipped byte', async () => {
    const out = join(dir, 'download');
    await cli(['checkpoint', 'download', id, '--out', out, '--json']);
    for (const file of ['model.safetensors', 'manifest.json', 'config.json', 'provenance.json'])
      expect(existsSync(join(out, file)), file).to.equal(true);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))).to.deep.equal(
      sidecarConfig(modelConfig('tiny')),
    );

    const provenance = JSON.parse(readFileSync(join(out, 'provenance.json'), 'utf8')) as Provenance;
    const state = await net();
    const round = (state.proposals[0] as RoundProposal).finalized[0]!;
    expect(provenance.genesisHash).to.equal(client.genesisHash);
    expect(provenance.network).to.deep.include({ id: network, name: 'consumers' });
    expect(provenance.checkpoint).to.deep.include({ id, certified: true, uri: server.url });
    expect(provenance.checkpoint.attestations).to.have.length(3);
    expect(provenance.lineage).to.have.length(1);
    const [r] = provenance.lineage;
    expect(r).to.deep.include({
      checkpoint: id,
      proposal: 0,
      kind: 'pretrain',
      round: 0,
      parent: null,
      block: round.block,
      coordinator: alice.address,
      updatesRoot: `0x${'11'.repeat(32)}`,
      datasetShardsRoot: `0x${'22'.repeat(32)}`,
    });
    expect(r!.blockHash).to.equal((await client.api.rpc.chain.getBlockHash(round.block)).toHex());
    expect(r!.dataset).to.deep.include({ root: datasetRoot, name: 'moby-dick', shards: 2 });
    expect(r!.contributors).to.deep.equal([
      { account: bob.address, samples: 120, shards: [0] },
      { account: charlie.address, samples: 80, shards: [1] },
    ]);
    expect(r!.rewards).to.deep.equal([{ account: bob.address, amount: REWARD }]);
    expect(r!.metrics.evalLoss).to.equal(evalLoss);

    expect(await cli(['checkpoint', 'verify', out])).to.match(/^verified: .* certified$/m);

    const text = await cli(['generate', '--checkpoint', out, '--prompt', 'Call me', '--tokens', '20']);
    expect(text.startsWith('Call me')).to.equal(true);
    // An id, now certified, is fetched into the cache and verified on the way.
    const byId = JSON.parse(
      await cli([
        'generate',
        '--checkpoint',
        id,
        '--prompt',
        'Call me',
        '--tokens',
        '20',
        '--cache',
        join(dir, 'cache'),
        '--json',
      ]),
    ) as { text: string };
    expect(byId.text).to.equal(text.slice('Call me'.length).replace(/\n$/, ''));

    const bytes = readFileSync(join(out, 'model.safetensors'));
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(join(out, 'model.safetensors'), bytes);
    const broken = await fedtune(['checkpoint', 'verify', out], env);
    expect(broken.status).to.equal(1);
    expect(broken.stderr).to.match(/E_CHUNK_CORRUPT/);
  });

  it('refuses a corrupted chunk on the server, naming it and writing no model', async () => {
    const manifest = (await store.getManifest(id))!;
    const path = store.chunkPath(manifest.chunks[2]!);
    const original = readFileSync(path);
    const corrupt = Buffer.from(original);
    corrupt[10] ^= 0xff;
    writeFileSync(path, corrupt);
    try {
      const out = join(dir, 'corrupt');
      const got = await fedtune(['checkpoint', 'download', id, '--out', out], env);
      expect(got.status).to.equal(1);
      expect(got.stderr).to.match(/E_CHUNK_CORRUPT.*chunk 2\b/);
      expect(existsSync(join(out, 'model.safetensors'))).to.equal(false);
      expect(existsSync(join(out, 'provenance.json'))).to.equal(false);
    } finally {
      writeFileSync(path, original);
    }
  });

  it("prints a classifier's label distribution, named from its dataset's manifest", async () => {
    const data = join(dir, 'spam.jsonl');
    writeFileSync(
      data,
      Array.from({ length: 12 }, (_, i) =>
        JSON.stringify({ id: `m${i}`, text: `message ${i}`, label: i % 2 ? 'spam' : 'ham' }),
      ).join('\n'),
    );
    const dataset = loadDataset({ name: data, labels: ['ham', 'spam'] });
    const manifest = buildManifest(dataset, shardDataset(dataset, { scheme: 'iid', shards: 1 }));
    const manifestPath = join(dir, 'spam-manifest.json');
    writeFileSync(manifestPath, JSON.stringify(manifest));

    const config = modelConfig('tiny', { kind: 'classifier', numLabels: 2 });
    const model = createModel(config, { seed: 2 });
    const { id: classifier } = await store.put(modelToSafetensors(model), {
      model: sidecarConfig(config) as never,
    });
    disposeModel(model);
    const out = join(dir, 'classifier');
    await downloadCheckpoint({ id: classifier, sources: [httpSource(server.url)], outDir: out, logger });
    // Only what generate reads of a provenance record: the id and the dataset of the newest round.
    writeFileSync(
      join(out, 'provenance.json'),
      JSON.stringify({
        checkpoint: { id: classifier },
        lineage: [
          { dataset: { name: 'spam', root: manifest.root, manifestUri: pathToFileURL(manifestPath).href } },
        ],
      }),
    );
    const got = JSON.parse(
      await cli(['generate', '--checkpoint', out, '--prompt', 'win money now', '--json']),
    ) as { labels: { label: string; probability: number }[] };
    expect(got.labels.map((l) => l.label).sort()).to.deep.equal(['ham', 'spam']);
    expect(got.labels[0]!.probability).to.be.at.least(got.labels[1]!.probability);
    expect(got.labels.reduce((a, l) => a + l.probability, 0)).to.be.closeTo(1, 1e-5);
  });
});
