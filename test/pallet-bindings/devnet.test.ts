// The protocol on a real Substrate runtime (fedtune devnet): governance, audit, atomic rewards, batch outcomes, snapshots.
import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { u8aToHex } from '@polkadot/util';
import { mnemonicGenerate } from '@polkadot/util-crypto';
import { startDevnet } from '../../devchain/index.ts';
import {
  PalletError,
  connect,
  deriveNetworkId,
  encodePayload,
  encodeSnapshot,
  fetchBlock,
  follow,
  initialState,
  reducerFingerprint,
  resumeFromSnapshot,
  signerFromSeed,
  stateCacheFile,
  submit,
  syncCached,
  syncState,
  type ChainClient,
  type FedtuneCall,
  type Hex32,
  type KeyringPair,
  type ProtocolState,
  type RoundProposal,
} from '../../pallet-bindings/index.ts';
import { datasetCall, hex32, roundFields } from './fixtures.ts';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

async function rejection(p: Promise<unknown>): Promise<PalletError> {
  try {
    await p;
  } catch (error) {
    return error as PalletError;
  }
  throw new Error('expected a rejection');
}

describe('pallet-bindings against the devnet', function () {
  this.timeout(120_000);
  let devnet: { url: string; close(): Promise<void> };
  let client: ChainClient;
  let alice: KeyringPair, bob: KeyringPair, charlie: KeyringPair, dave: KeyringPair;
  let net: Hex32;
  const DATA = hex32(0xd1);
  const CKPT0 = hex32(0xc0);
  const CKPT1 = hex32(0xc1);

  const send = (signer: KeyringPair, call: FedtuneCall, transfers?: { dest: string; value: string }[]) =>
    submit(client, { signer, network: call.type === 'createNetwork' ? null : net, calls: [call], transfers });
  const state = (): Promise<ProtocolState> => syncState(client, { state: initialState({ only: net }) });
  /** Advances the chain by plain (non-fedtune) remarks from Ferdie: one block each on an instant-mode devnet. */
  const newBlocks = async (count: number) => {
    const ferdie = await signerFromSeed('//Ferdie');
    for (let i = 0; i < count; i++) {
      await new Promise<void>((resolve, reject) => {
        client.api.tx.system
          .remark(u8aToHex(new TextEncoder().encode(`tick ${i}`)))
          .signAndSend(ferdie, { nonce: -1 }, (r) => {
            if (r.status.isFinalized) resolve();
          })
          .catch(reject);
      });
    }
  };
  const head = async () => (await client.api.rpc.chain.getHeader()).number.toNumber();
  const free = async (address: string) =>
    (
      (await client.api.query.system.account(address)) as unknown as {
        data: { free: { toBigInt(): bigint } };
      }
    ).data.free.toBigInt();

  before(async () => {
    devnet = await startDevnet({ port: 0, logger, blockMode: 'instant' });
    client = await connect({ url: devnet.url, logger });
    [alice, bob, charlie, dave] = (await Promise.all(
      ['//Alice', '//Bob', '//Charlie', '//Dave'].map(signerFromSeed),
    )) as [KeyringPair, KeyringPair, KeyringPair, KeyringPair];
  });

  after(async () => {
    await client?.close();
    await devnet?.close();
  });

  it('creates a network by Alice with members Alice, Bob, Charlie and a two-thirds quorum', async () => {
    const inclusion = await send(alice, {
      type: 'createNetwork',
      name: 'devnet-dao',
      members: [alice.address, bob.address, charlie.address],
      quorum: { numerator: 2, denominator: 3 },
      votingPeriod: 6,
      coordinators: [alice.address],
    });
    net = deriveNetworkId(inclusion.blockHash, inclusion.extrinsicIndex, 0);
    await send(dave, datasetCall(DATA));
    const s = await state();
    expect(s.networks[net]).to.include({ name: 'devnet-dao', founder: alice.address });
    expect(s.networks[net]!.members).to.deep.equal([alice.address, bob.address, charlie.address]);
    expect(s.networks[net]!.datasets[DATA]).to.include({ owner: dave.address });
  });

  it('approves a voted round and records a non-member proposal, a double vote and a late vote in the audit', async () => {
    const proposed = await send(alice, { type: 'proposeRound', ...roundFields(DATA) });
    await send(alice, { type: 'vote', proposal: 0, aye: true });
    await send(bob, { type: 'vote', proposal: 0, aye: true });
    // These land (the chain accepts any remark) but break the protocol's rules.
    const outsider = await send(dave, { type: 'proposeRound', ...roundFields(DATA) });
    const double = await send(bob, { type: 'vote', proposal: 0, aye: false });
    const deadline = proposed.blockNumber + 6;
    await newBlocks(deadline - (await head()));
    const late = await send(charlie, { type: 'vote', proposal: 0, aye: true });
    expect(late.blockNumber).to.be.greaterThan(deadline);

    const s = await state();
    const p = s.networks[net]!.proposals[0]!;
    expect(p).to.include({ status: 'approved', ayes: 2, nays: 0, decidedAt: deadline });
    expect(s.networks[net]!.proposals).to.have.length(1);
    expect(s.audit.map((a) => [a.code, a.signer, a.block, a.extrinsic])).to.deep.equal([
      ['E_NOT_MEMBER', dave.address, outsider.blockNumber, outsider.extrinsicIndex],
      ['E_DOUBLE_VOTE', bob.address, double.blockNumber, double.extrinsicIndex],
      ['E_VOTING_CLOSED', charlie.address, late.blockNumber, late.extrinsicIndex],
    ]);
  });

  it('changes the membership through governance', async () => {
    const proposed = await send(bob, { type: 'proposeMembership', action: 'Add', account: dave.address });
    await send(alice, { type: 'vote', proposal: 1, aye: true });
    await send(charlie, { type: 'vote', proposal: 1, aye: true });
    await newBlocks(proposed.blockNumber + 6 - (await head()));
    const s = await state();
    expect(s.networks[net]!.proposals[1]).to.include({ status: 'approved', applied: true });
    expect(s.networks[net]!.members).to.include(dave.address);
  });

  it('pays rewards atomically with finalizeRound: all transfers land, or none and no round', async () => {
    const eve = (await signerFromSeed('//Eve')).address;
    const ferdie = (await signerFromSeed('//Ferdie')).address;
    await send(alice, { type: 'openRound', proposal: 0, coordinatorEndpoint: 'ws://127.0.0.1:7000' });
    const finalize = (round: number, id: Hex32): FedtuneCall => ({
      type: 'finalizeRound',
      proposal: 0,
      round,
      checkpoint: { id, bytes: 4096, uri: `http://127.0.0.1:8080/${id}` },
      updatesRoot: hex32(0xe1),
      contributors: [
        // 60 : 40 of rewardPerRound (1e12): the reducer keeps each transfer within its contributor's share.
        { account: eve, samples: 60, shards: [0] },
        { account: ferdie, samples: 40, shards: [1] },
      ],
      datasetShardsRoot: hex32(0xe2),
      metrics: { trainLoss: 3.1, evalLoss: 3.3, extra: [] },
    });
    const [eve0, ferdie0] = await Promise.all([free(eve), free(ferdie)]);
    await send(alice, finalize(0, CKPT0), [
      { dest: eve, value: '600000000000' },
      { dest: ferdie, value: '400000000000' },
    ]);
    const [eve1, ferdie1] = await Promise.all([free(eve), free(ferdie)]);
    expect(eve1 - eve0).to.equal(600000000000n);
    expect(ferdie1 - ferdie0).to.equal(400000000000n);

    // A transfer below the existential deposit to an empty account fails, so the whole batchAll fails.
    const empty = (await signerFromSeed(mnemonicGenerate())).address;
    const error = await rejection(
      send(alice, finalize(1, CKPT1), [
        { dest: eve, value: '600000000000' },
        { dest: empty, value: '1' },
      ]),
    );
    expect(error.code).to.equal('E_DISPATCH_FAILED');
    expect(await free(eve)).to.equal(eve1);
    expect(await free(empty)).to.equal(0n);

    const s = await state();
    const p = s.networks[net]!.proposals[0] as RoundProposal;
    expect(p.finalized.map((f) => f.round)).to.deep.equal([0]);
    expect(p.finalized[0]!.rewards).to.deep.equal([
      { account: eve, amount: '600000000000' },
      { account: ferdie, amount: '400000000000' },
    ]);
    expect(Object.keys(s.networks[net]!.checkpoints)).to.deep.equal([CKPT0]);
  });

  it('reads batch outcomes from the runtime events: an interrupted batch, a failed batchAll (forceBatch where the runtime has it)', async () => {
    const empty = (await signerFromSeed(mnemonicGenerate())).address;
    const remark = (call: FedtuneCall) =>
      client.api.tx.system.remarkWithEvent(u8aToHex(encodePayload({ network: net, call })));
    const failing = client.api.tx.balances.transferKeepAlive(empty, 1);
    const attest = (verdict: boolean): FedtuneCall => ({
      type: 'attest',
      checkpoint: CKPT0,
      evalLoss: 3.3,
      verdict,
    });
    const sendRaw = (signer: KeyringPair, tx: ReturnType<typeof remark>) =>
      new Promise<string>((resolve, reject) => {
        tx.signAndSend(signer, { nonce: -1 }, (r) => {
          if (r.status.isFinalized) resolve(r.status.asFinalized.toHex());
        }).catch(reject);
      });
    // batch: Bob's attest runs, the transfer fails and interrupts, the register after it never runs.
    const h1 = await sendRaw(
      bob,
      client.api.tx.utility.batch([remark(attest(true)), failing, remark({ type: 'deregisterWorker' })]),
    );
    const b1 = await fetchBlock(client, h1);
    const leaves = (c: (typeof b1.extrinsics)[number]['call']): boolean[] =>
      c.kind === 'batch' ? c.calls.flatMap(leaves) : [c.ok];
    expect(leaves(b1.extrinsics.find((e) => e.signer === bob.address)!.call)).to.deep.equal([
      true,
      false,
      false,
    ]);
    // forceBatch where the runtime has it: the failing transfer is skipped, Charlie's attest after it runs.
    // Otherwise a batchAll whose failure drops Charlie's attest, and a plain one that lands.
    const utility = client.api.tx.utility as unknown as Record<
      string,
      ((calls: unknown[]) => typeof failing) | undefined
    >;
    if (utility.forceBatch) {
      const h2 = await sendRaw(charlie, utility.forceBatch([failing, remark(attest(true))]));
      const b2 = await fetchBlock(client, h2);
      expect(leaves(b2.extrinsics.find((e) => e.signer === charlie.address)!.call)).to.deep.equal([
        false,
        true,
      ]);
    } else {
      const h2 = await sendRaw(charlie, client.api.tx.utility.batchAll([remark(attest(false)), failing]));
      const b2 = await fetchBlock(client, h2);
      const e2 = b2.extrinsics.find((e) => e.signer === charlie.address)!;
      expect([e2.ok, ...leaves(e2.call)]).to.deep.equal([false, false, false]);
      await sendRaw(charlie, client.api.tx.utility.batchAll([remark(attest(true))]));
    }
    const s = await state();
    const c = s.networks[net]!.checkpoints[CKPT0]!;
    expect(Object.keys(c.attests).sort()).to.deep.equal([bob.address, charlie.address].sort());
    // Two positive attests of four members reach 2/3? ceil(8/3) = 3: not yet.
    expect(c.certified).to.equal(false);
    expect(s.audit.filter((a) => a.code === 'E_NOT_REGISTERED')).to.have.length(0);
    await send(alice, { type: 'attest', checkpoint: CKPT0, evalLoss: 3.2, verdict: true });
    expect((await state()).networks[net]!.checkpoints[CKPT0]!.certified).to.equal(true);
  });

  it('resumes from a snapshot that is still canonical and discards one that is not', async () => {
    const at = await state();
    const bytes = encodeSnapshot(at);
    await send(bob, {
      type: 'registerWorker',
      capabilities: { backend: 'wasm', device: 'cpu', memoryBytes: 1e9 },
      endpoint: null,
    });
    const resumed = await resumeFromSnapshot(client, bytes);
    expect(resumed).to.deep.equal(at);
    const full = await state();
    expect(await syncState(client, { state: resumed! })).to.deep.equal(full);
    const forged = encodeSnapshot({ ...at, blockHash: hex32(0x55) });
    expect(await resumeFromSnapshot(client, forged)).to.equal(null);
  });

  it('caches the state per chain and view: a later read folds only new blocks, and a stale or broken cache is replayed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedtune-state-cache-'));
    try {
      const first = await syncCached(client, { dir, only: net });
      expect(first).to.deep.equal(await state());
      const file = stateCacheFile(dir, client.genesisHash, net);
      expect(file).to.include(reducerFingerprint());
      // A marker in the cached state survives the next read only if that read resumed from the cache.
      const marked = {
        ...first,
        ignored: [{ block: 0, extrinsic: 0, call: 0, signer: null, code: 'MARK', reason: 'cached' }],
      };
      writeFileSync(file, encodeSnapshot(marked));
      await newBlocks(1);
      const resumed = await syncCached(client, { dir, only: net });
      expect(resumed.height).to.be.greaterThan(first.height);
      expect(resumed.ignored.map((i) => i.code)).to.deep.equal(['MARK']);
      expect({ ...resumed, ignored: [] }).to.deep.equal({ ...(await state()), ignored: [] });
      // Not used: past the block asked for, of another view, of another chain (block hash), or unreadable.
      const before = await syncCached(client, { dir, only: net, to: first.height });
      expect(before).to.deep.equal(
        await syncState(client, { state: initialState({ only: net }), to: first.height }),
      );
      expect((await syncCached(client, { dir, only: null })).ignored.map((i) => i.code)).to.not.include(
        'MARK',
      );
      writeFileSync(file, encodeSnapshot({ ...marked, blockHash: hex32(0x55) }));
      expect((await syncCached(client, { dir, only: net })).ignored).to.deep.equal([]);
      writeFileSync(file, 'not msgpack');
      expect(await syncCached(client, { dir, only: net })).to.deep.equal(await state());
      expect(readdirSync(dirname(file)).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('follows finalized heads into the reducer', async () => {
    const seen: number[] = [];
    let latest: ProtocolState | undefined;
    const stop = await follow(client, {
      state: await state(),
      onState: (s, block) => {
        seen.push(block.number);
        latest = s;
      },
    });
    const inclusion = await send(charlie, {
      type: 'registerWorker',
      capabilities: { backend: 'cpu', device: 'cpu', memoryBytes: 1 },
      endpoint: 'ws://x',
    });
    for (let i = 0; i < 100 && !seen.includes(inclusion.blockNumber); i++)
      await new Promise((r) => setTimeout(r, 50));
    await stop();
    expect(seen).to.include(inclusion.blockNumber);
    expect(latest!.networks[net]!.workers[charlie.address]).to.include({ endpoint: 'ws://x' });
  });

  it('says E_CHAIN_UNREACHABLE when nothing answers', async () => {
    const error = await rejection(connect({ url: 'ws://127.0.0.1:1', logger, attempts: 2, backoffMs: 10 }));
    expect(error.code).to.equal('E_CHAIN_UNREACHABLE');
  });
});
