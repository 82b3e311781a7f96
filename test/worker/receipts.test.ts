// A worker's receipt checked against the chain: the finalizeRound's updatesRoot and contributors decide, not the root a
// coordinator puts in its RoundResult frame; the leaf is recomputed from the worker's own payload hash.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import type { FinalizedRound, Hex32 } from '../../pallet-bindings/index.ts';
import { updateLeafHash, updatesTree } from '../../pallet-bindings/index.ts';
import { checkRoundResult, type Receipt } from '../../worker/runner.ts';
import type { RoundResult } from '../../proto/index.ts';

const BOB = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const EVE = '5HGjWAeFDfFCWPsjFQdVV2Msvz2XtMktvgocEZcCj68kUMaw';
const FERDIE = '5CiPPseXPECbkjWCa6MnjNokrgYjMqmKndv2rSnekmSK2DjL';
const sha = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());
const hex = (b: Uint8Array) => `0x${Buffer.from(b).toString('hex')}` as Hex32;
const fromHex = (h: string) => new Uint8Array(Buffer.from(h.slice(2), 'hex'));

/** Three contributors of proposal 2 round 1; Bob's receipt; the chain's finalizeRound over all three. */
function committed() {
  const payloads: Record<string, Uint8Array> = {
    [BOB]: sha('bob'),
    [EVE]: sha('eve'),
    [FERDIE]: sha('ferdie'),
  };
  const samples: Record<string, number> = { [BOB]: 64, [EVE]: 32, [FERDIE]: 64 };
  const leaves = Object.keys(payloads).map((account) => ({
    account,
    updateHash: updateLeafHash({
      proposal: 2,
      round: 1,
      account,
      samples: samples[account]!,
      payloadSha256: payloads[account]!,
    }),
  }));
  const tree = updatesTree(leaves);
  const finalized: FinalizedRound = {
    round: 1,
    checkpoint: { id: hex(sha('ckpt')), bytes: 1, uri: 'http://127.0.0.1/c' },
    updatesRoot: tree.root,
    contributors: Object.keys(payloads).map((account) => ({
      account,
      samples: samples[account]!,
      shards: [0],
    })),
    datasetShardsRoot: hex(sha('shards')),
    metrics: { trainLoss: 1, evalLoss: 1, extra: [] },
    block: 9,
    coordinator: EVE,
    rewards: [],
  };
  const bobLeaf = leaves.find((l) => l.account === BOB)!.updateHash;
  const receipt: Receipt = {
    proposal: 2,
    round: 1,
    taskId: 't',
    coordinator: 'ws://127.0.0.1:1',
    account: BOB,
    updateHash: hex(bobLeaf),
    samples: 64,
    shards: [0],
    trainLoss: 1,
    payloadSha256: hex(payloads[BOB]!),
  };
  const proof = tree.proof(BOB)!;
  const result: RoundResult = {
    proposal: 2,
    round: 1,
    checkpointId: finalized.checkpoint.id,
    updatesRoot: fromHex(tree.root),
    proof: proof.siblings.map(fromHex),
    leafIndex: proof.leafIndex,
    leafCount: proof.leafCount,
    blockHash: hex(sha('block')),
  };
  return { finalized, receipt, result, leaves, payloads };
}

const chainOf = (f: FinalizedRound | null) => ({ finalizedRound: async () => f });

describe('worker: receipts checked against the chain', () => {
  it('verifies an honest receipt against the chain', async () => {
    const { finalized, receipt, result } = committed();
    expect(await checkRoundResult({ receipt, result, chain: chainOf(finalized) })).to.deep.equal({
      verified: true,
    });
  });

  it('refuses a RoundResult whose root and proof agree with each other but not with the chain', async () => {
    // A coordinator that left Bob out on chain makes a tree of its own containing him and sends that.
    const { finalized, receipt, result, leaves } = committed();
    const onChain = updatesTree(leaves.filter((l) => l.account !== BOB));
    const chain = chainOf({ ...finalized, updatesRoot: onChain.root });
    // Against the frame alone (the old check), it looks proven.
    expect((await checkRoundResult({ receipt, result })).verified).to.equal(true);
    const checked = await checkRoundResult({ receipt, result, chain });
    expect(checked.verified).to.equal(false);
    expect(checked.failure).to.match(/^E_RECEIPT_PROOF/);
  });

  it('recomputes its own leaf: an acknowledged hash for other samples or another payload does not count', async () => {
    const { finalized, receipt, result } = committed();
    const fewer = {
      ...finalized,
      contributors: finalized.contributors.map((c) => (c.account === BOB ? { ...c, samples: 1 } : c)),
    };
    const checked = await checkRoundResult({ receipt, result, chain: chainOf(fewer) });
    expect(checked.failure).to.match(/^E_RECEIPT_LEAF/);
    const other = await checkRoundResult({
      receipt: { ...receipt, payloadSha256: hex(sha('not mine')) },
      result,
      chain: chainOf(finalized),
    });
    expect(other.failure).to.match(/^E_RECEIPT_LEAF/);
  });

  it('reports a worker missing from the contributors on chain, and a round the chain never finalized', async () => {
    const { finalized, receipt, result } = committed();
    const without = { ...finalized, contributors: finalized.contributors.filter((c) => c.account !== BOB) };
    expect((await checkRoundResult({ receipt, result, chain: chainOf(without) })).failure).to.match(
      /^E_RECEIPT_NOT_CONTRIBUTOR/,
    );
    const never = await checkRoundResult({
      receipt,
      result,
      chain: chainOf(null),
      attempts: 2,
      retryMs: 1,
    });
    expect(never.failure).to.match(/^E_RECEIPT_NOT_ON_CHAIN/);
  });
});
