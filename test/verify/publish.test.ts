// A round's publication on disk: what publishRound writes and serves, and what --keep-updates prunes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { openStore, type CheckpointStore } from '../../checkpoints/index.ts';
import { publishRound, pruneUpdates, readPublication, type UpdateRecord } from '../../coordinator/index.ts';
import { parsePublication } from '../../verify/index.ts';
import { inProcess } from '../run-cli.ts';

const update = (round: number, account: string, fill: number): UpdateRecord => {
  const payload = new Uint8Array(64).fill(fill);
  const payloadSha256 = new Uint8Array(createHash('sha256').update(payload).digest());
  return {
    t: 'update',
    proposal: 0,
    round,
    account,
    taskId: `0-${round}-0-0`,
    samples: 8,
    shards: [round],
    trainLoss: 3,
    payloadSha256,
    updateHash: new Uint8Array(32),
    signature: new Uint8Array(64).fill(1),
    payload,
  };
};

describe('verify: a round publication and its retention', () => {
  let dir: string;
  let store: CheckpointStore;
  const hashes: string[][] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedtune-publish-'));
    store = await openStore(dir);
    for (const round of [0, 1, 2]) {
      const updates = [update(round, 'b-worker', 10 * round + 1), update(round, 'a-worker', 10 * round + 2)];
      const pub = await publishRound(store, {
        network: `0x${'11'.repeat(32)}`,
        coordinator: 'coord',
        proposal: 0,
        round,
        base: `0x${'22'.repeat(32)}`,
        codec: 'dense',
        stateBefore: new Uint8Array([round]),
        stateAfter: new Uint8Array([round + 1]),
        updates,
      });
      hashes.push(pub.updates.map((u) => u.payloadSha256));
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the record in leaf order with the signed fields, and every payload as a blob', async () => {
    const pub = parsePublication(new TextDecoder().decode((await readPublication(store, 0, 1))!));
    expect(pub.updates.map((u) => u.account)).to.deep.equal(['a-worker', 'b-worker']);
    expect(pub.updates[0]!.signature).to.equal(`0x${'01'.repeat(64)}`);
    for (const h of hashes.flat()) expect(await store.readBlob(h)).to.have.length(64);
    expect(await readPublication(store, 0, 3)).to.equal(null);
  });

  it('keeps every payload with all, and only the newest rounds with a number', async () => {
    expect(await pruneUpdates(store, 0, 2, 'all')).to.equal(0);
    expect(await pruneUpdates(store, 0, 2, 1)).to.equal(4);
    for (const h of [...hashes[0]!, ...hashes[1]!]) expect(await store.readBlob(h)).to.equal(null);
    for (const h of hashes[2]!) expect(await store.readBlob(h)).to.have.length(64);
    // Records stay, so a verifier learns what was pruned rather than that nothing was published.
    expect(await readPublication(store, 0, 0)).to.not.equal(null);
  });

  it('refuses a publication that breaks its bounds, naming the field', () => {
    const bad = {
      version: 1,
      network: 'n',
      proposal: 0,
      round: 0,
      coordinator: 'c',
      base: '0x12',
      codec: 'dense',
      stateBefore: null,
      updates: [],
    };
    expect(() => parsePublication(JSON.stringify(bad))).to.throw(/base/);
    expect(() => parsePublication('[')).to.throw(/not JSON/);
  });

  it('checks --keep-updates before starting', async () => {
    const run = await inProcess(['coordinator', '--keep-updates', '0', '--network', `0x${'11'.repeat(32)}`]);
    expect(run.status).to.equal(2);
    expect(run.stderr).to.match(/--keep-updates takes a number of rounds/);
  });
});
