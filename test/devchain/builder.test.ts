// The one-task block builder against chopsticks' own: the same block from the same parent (block 1 included), the
// fallback when an extrinsic fails to apply, the one-task path taken for empty and ordinary blocks, and in instant mode
// a transaction's block built when it is submitted, in place of its validation.
import { expect } from 'chai';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApiPromise } from '@polkadot/api';
import type { KeyringPair } from '@polkadot/keyring/types';
import { stringToHex, u8aToHex } from '@polkadot/util';
import type { HexString } from '@polkadot/util/types';
import type { TransactionValidity } from '@polkadot/types/interfaces';
import { FileDatabase, startDevnet, type BlockBuilder, type Devnet } from '../../devchain/index.ts';
import { checkNonceTags } from '../../devchain/pool.ts';
import { connect, logger, pair } from './helpers.ts';

interface Running {
  devnet: Devnet;
  api: ApiPromise;
  dataDir: string;
}

/** The head block as a devnet saved it (hash, header, extrinsics, storage diff), read from a copy of its log. */
async function savedHead(dataDir: string, copyTo: string) {
  cpSync(join(dataDir, 'chain.jsonl'), join(copyTo, 'chain.jsonl'));
  const db = new FileDatabase(join(copyTo, 'chain.jsonl'));
  try {
    const block = await db.queryHighestBlock();
    if (!block) throw new Error(`no block in ${dataDir}`);
    return block;
  } finally {
    await db.close();
  }
}

type Diff = Record<string, string | null>;

/**
 * The one-task block leaves the state chopsticks' block leaves on the same parent. chopsticks' diff also holds each
 * key its builder read after the first call (its storage layers cache reads in the layer on top) with the parent's
 * value, or null where the parent has none: so each key the one-task block wrote, chopsticks' block wrote with the
 * same value, and each other key in chopsticks' diff holds the parent's value.
 */
async function expectSameState(api: ApiPromise, parentHash: string, fast: Diff, slow: Diff): Promise<void> {
  for (const [key, value] of Object.entries(fast)) {
    expect(slow, key).to.have.property(key);
    expect(value, key).to.equal(slow[key]);
  }
  for (const [key, value] of Object.entries(slow)) {
    if (key in fast) continue;
    const parent = (await api.rpc('state_getStorage' as never, key, parentHash)) as unknown as string | null;
    expect(value, `${key}, only in chopsticks' diff`).to.equal(parent);
  }
}

async function waitForPool(api: ApiPromise, count: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await api.rpc.author.pendingExtrinsics()).length >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the pool never held ${count} transactions`);
}

/** Signs ahead, immortal and with explicit nonces, so the same bytes go to two chains. */
async function sign(
  api: ApiPromise,
  tx: ReturnType<ApiPromise['tx']['system']['remark']>,
  signer: KeyringPair,
  nonce: number,
): Promise<HexString> {
  await tx.signAsync(signer, { nonce, era: 0 });
  return tx.toHex();
}

describe('devchain: a block in one runtime task', function () {
  this.timeout(300_000);
  const dirs: string[] = [];
  let base: string;
  let alice: KeyringPair, bob: KeyringPair, ferdie: KeyringPair;

  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedtune-builder-'));
    dirs.push(dir);
    return dir;
  };

  /** A devnet on a copy of the base chain: both builders start from the same parent block. */
  const fromBase = async (blockBuilder: BlockBuilder): Promise<Running> => {
    const dataDir = tempDir();
    cpSync(base, dataDir, { recursive: true });
    const devnet = await startDevnet({ port: 0, logger, blockMode: 'manual', dataDir, blockBuilder });
    return { devnet, api: await connect(devnet.url), dataDir };
  };
  const stop = async (r: Running) => {
    await r.api.disconnect();
    await r.devnet.close();
  };

  before(async () => {
    [alice, bob, ferdie] = await Promise.all(['//Alice', '//Bob', '//Ferdie'].map(pair));
    base = tempDir();
    // Block 2 is past block 1's special case (below).
    const devnet = await startDevnet({ port: 0, logger, blockMode: 'manual', dataDir: base });
    await devnet.newBlock();
    await devnet.close();
  });
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('builds the same block as chopsticks from the same parent: same hash, same state', async () => {
    const fast = await fromBase('one-task');
    const slow = await fromBase('chopsticks');
    try {
      const { api } = fast;
      const txs = [
        await sign(api, api.tx.system.remarkWithEvent(stringToHex('one')), alice, 0),
        await sign(api, api.tx.system.remarkWithEvent(stringToHex('two')), alice, 1),
        await sign(api, api.tx.balances.transferKeepAlive(ferdie.address, 10n ** 15n), bob, 0),
        await sign(api, api.tx.system.remark(stringToHex('three')), alice, 2),
      ];
      const before = fast.devnet.blockBuildStats();
      for (const r of [fast, slow]) {
        for (const tx of txs) await r.api.rpc.author.submitExtrinsic(tx);
        await waitForPool(r.api, txs.length);
        await r.devnet.newBlock();
      }
      expect(fast.devnet.blockBuildStats()).to.deep.equal({
        oneTask: before.oneTask + 1,
        fallback: before.fallback,
        ahead: 0,
      });
      expect(slow.devnet.blockBuildStats()).to.deep.equal({ oneTask: 0, fallback: 0, ahead: 0 });
      const [a, b] = await Promise.all([
        savedHead(fast.dataDir, tempDir()),
        savedHead(slow.dataDir, tempDir()),
      ]);
      expect(a.number).to.equal(3);
      expect(a.extrinsics).to.have.length(2 + 4);
      expect(a.hash).to.equal(b.hash);
      expect(a.header).to.deep.equal(b.header);
      expect(a.extrinsics).to.deep.equal(b.extrinsics);
      expect(Object.keys(a.storageDiff ?? {}).length).to.be.greaterThan(10);
      const parentHash = (await slow.api.rpc.chain.getHeader(b.hash)).parentHash.toHex();
      await expectSameState(slow.api, parentHash, a.storageDiff as Diff, b.storageDiff as Diff);
    } finally {
      await stop(fast);
      await stop(slow);
    }
  });

  it('builds block 1 in one task, the same block as chopsticks on the same genesis', async () => {
    // Block 1's timestamp (and the slot in its digest) comes from the clock, as the genesis has none: both chains
    // start at the same moment.
    const realNow = Date.now;
    const moment = realNow();
    Date.now = () => moment;
    const started: Running[] = [];
    try {
      for (const blockBuilder of ['one-task', 'chopsticks'] as const) {
        const dataDir = tempDir();
        const devnet = await startDevnet({ port: 0, logger, blockMode: 'manual', dataDir, blockBuilder });
        started.push({ devnet, api: await connect(devnet.url), dataDir });
      }
    } finally {
      Date.now = realNow;
    }
    const [fast, slow] = started as [Running, Running];
    try {
      expect(fast.devnet.blockBuildStats()).to.deep.equal({ oneTask: 1, fallback: 0, ahead: 0 });
      expect(slow.devnet.blockBuildStats()).to.deep.equal({ oneTask: 0, fallback: 0, ahead: 0 });
      expect(fast.devnet.genesisHash).to.equal(slow.devnet.genesisHash);
      const [a, b] = await Promise.all([
        savedHead(fast.dataDir, tempDir()),
        savedHead(slow.dataDir, tempDir()),
      ]);
      expect(a.number).to.equal(1);
      expect(a.extrinsics).to.have.length(2);
      expect(a.hash).to.equal(b.hash);
      expect(a.header).to.deep.equal(b.header);
      expect(a.extrinsics).to.deep.equal(b.extrinsics);
      expect(Object.keys(a.storageDiff ?? {}).length).to.be.greaterThan(10);
      await expectSameState(slow.api, slow.devnet.genesisHash, a.storageDiff as Diff, b.storageDiff as Diff);
      // chopsticks writes System.ParentHash after initialize; the runtime had written the same genesis hash.
      const parentHash = await fast.api.query.system.parentHash.at(a.hash);
      expect(parentHash.toHex()).to.equal(fast.devnet.genesisHash);
    } finally {
      for (const r of started) await stop(r);
    }
  });

  it("falls back to chopsticks' builder when an extrinsic fails to apply, with chopsticks' outcome", async () => {
    const fast = await fromBase('one-task');
    const slow = await fromBase('chopsticks');
    const statuses: Record<string, string[][]> = {};
    try {
      const { api } = fast;
      // Ferdie sends everything away (the account is reaped), so its next transaction no longer applies.
      const drain = await sign(api, api.tx.balances.transferAll(bob.address, false), ferdie, 0);
      const late = await sign(api, api.tx.system.remarkWithEvent(stringToHex('late')), ferdie, 1);
      const other = await sign(api, api.tx.system.remarkWithEvent(stringToHex('other')), alice, 0);
      const before = fast.devnet.blockBuildStats();
      for (const [name, r] of [
        ['fast', fast],
        ['slow', slow],
      ] as const) {
        const seen: string[][] = [[], [], []];
        statuses[name] = seen;
        const unsubscribes: Promise<() => void>[] = [];
        const settled = [drain, late, other].map(
          (tx, i) =>
            new Promise<void>((resolve, reject) => {
              const watch = r.api.rpc.author.submitAndWatchExtrinsic(
                r.api.createType('Extrinsic', tx),
                (status) => {
                  seen[i]!.push(status.type);
                  if (status.isFinalized || status.isInvalid || status.isDropped) resolve();
                },
              );
              watch.catch(reject);
              unsubscribes.push(watch);
            }),
        );
        await waitForPool(r.api, 3);
        await r.devnet.newBlock();
        await Promise.all(settled);
        for (const unsubscribe of await Promise.all(unsubscribes)) unsubscribe();
      }
      expect(fast.devnet.blockBuildStats()).to.deep.equal({
        oneTask: before.oneTask,
        fallback: before.fallback + 1,
        ahead: 0,
      });
    } finally {
      await stop(fast);
      await stop(slow);
    }
    for (const name of ['fast', 'slow']) {
      const [drained, late, other] = statuses[name]!;
      expect(drained, name).to.include('Finalized');
      expect(late, name).to.include('Invalid').and.not.include('Finalized');
      expect(other, name).to.include('Finalized');
    }
    const [a, b] = await Promise.all([
      savedHead(fast.dataDir, tempDir()),
      savedHead(slow.dataDir, tempDir()),
    ]);
    expect(a.extrinsics).to.have.length(2 + 2);
    expect(a.hash).to.equal(b.hash);
    // Both blocks come from chopsticks' builder.
    expect(a.storageDiff).to.deep.equal(b.storageDiff);
  });

  it('takes the one-task path for an empty block and a block of remarks', async () => {
    const devnet = await startDevnet({ port: 0, logger, blockMode: 'manual' });
    const api = await connect(devnet.url);
    try {
      const start = devnet.blockBuildStats();
      const empty = await devnet.newBlock();
      expect(devnet.blockBuildStats()).to.deep.equal({
        oneTask: start.oneTask + 1,
        fallback: start.fallback,
        ahead: 0,
      });
      const emptyBlock = await api.rpc.chain.getBlock(empty.hash);
      expect(emptyBlock.block.extrinsics.filter((x) => x.isSigned)).to.have.length(0);

      const nonce = (await api.rpc.system.accountNextIndex(alice.address)).toNumber();
      for (let i = 0; i < 3; i++) {
        const tx = await sign(
          api,
          api.tx.system.remarkWithEvent(stringToHex(`remark ${i}`)),
          alice,
          nonce + i,
        );
        await api.rpc.author.submitExtrinsic(tx);
      }
      await waitForPool(api, 3);
      const full = await devnet.newBlock();
      expect(devnet.blockBuildStats()).to.deep.equal({
        oneTask: start.oneTask + 2,
        fallback: start.fallback,
        ahead: 0,
      });
      const events = (await (await api.at(full.hash)).query.system.events()) as unknown as {
        event: { section: string; method: string };
      }[];
      const remarked = events.filter((e) => e.event.section === 'system' && e.event.method === 'Remarked');
      expect(remarked).to.have.length(3);
      expect(full.number).to.equal(empty.number + 1);
      expect((await api.rpc.chain.getFinalizedHead()).toHex()).to.equal(full.hash);
    } finally {
      await api.disconnect();
      await devnet.close();
    }
  });

  it('builds, in instant mode, the block of a transaction when it is submitted: the same block as chopsticks, one task fewer', async () => {
    const started: Running[] = [];
    for (const blockBuilder of ['one-task', 'chopsticks'] as const) {
      const dataDir = tempDir();
      cpSync(base, dataDir, { recursive: true });
      const devnet = await startDevnet({ port: 0, logger, blockMode: 'instant', dataDir, blockBuilder });
      started.push({ devnet, api: await connect(devnet.url), dataDir });
    }
    const [fast, slow] = started as [Running, Running];
    try {
      const { api } = fast;
      const remark = await sign(api, api.tx.system.remarkWithEvent(stringToHex('ahead')), alice, 0);
      // The tags the pool gives a transaction built ahead are the runtime's own for it.
      const validity = (await api.call.taggedTransactionQueue.validateTransaction(
        'External',
        remark,
        (await api.rpc.chain.getBlockHash()).toHex(),
      )) as unknown as TransactionValidity;
      expect(validity.isOk, validity.toString()).to.equal(true);
      expect(validity.asOk.provides.map((t) => t.toHex())).to.deep.equal(
        checkNonceTags(u8aToHex(alice.publicKey), 0).provides,
      );
      expect(validity.asOk.requires.map((t) => t.toHex())).to.deep.equal([]);

      const before = fast.devnet.blockBuildStats();
      for (const r of [fast, slow]) {
        await new Promise<void>((resolve, reject) => {
          r.api.rpc.author
            .submitAndWatchExtrinsic(r.api.createType('Extrinsic', remark), (status) => {
              if (status.isFinalized) resolve();
              if (status.isInvalid || status.isDropped) reject(new Error(status.type));
            })
            .catch(reject);
        });
      }
      expect(fast.devnet.blockBuildStats()).to.deep.equal({
        oneTask: before.oneTask + 1,
        fallback: before.fallback,
        ahead: before.ahead + 1,
      });
      const [a, b] = await Promise.all([
        savedHead(fast.dataDir, tempDir()),
        savedHead(slow.dataDir, tempDir()),
      ]);
      expect(a.number).to.equal(3);
      expect(a.hash).to.equal(b.hash);
      expect(a.header).to.deep.equal(b.header);
      expect(a.extrinsics).to.deep.equal(b.extrinsics);

      // A transaction that does not apply on the head (a nonce already used) is validated as before: refused.
      const stale = await sign(api, api.tx.system.remark(stringToHex('stale')), alice, 0);
      const refused = await api.rpc.author.submitExtrinsic(stale).then(
        () => null,
        (error: Error) => error.message,
      );
      expect(refused).to.match(/1010|Invalid|Stale/i);
      expect(fast.devnet.blockBuildStats().ahead).to.equal(before.ahead + 1);
    } finally {
      for (const r of started) await stop(r);
    }
  });
});
