// Receipts and checked submission without a chain: a leaf is recomputed, a proof must reach the root; the reducer's
// verdict on calls is known before anything is signed.
import { expect } from 'chai';
import {
  dryRun,
  initialState,
  reduceBlocks,
  updateLeafHash,
  updatesTree,
  verifyReceipt,
  type KeyringPair,
} from '../../pallet-bindings/index.ts';
import {
  ALICE,
  BOB,
  EVE,
  callsBlock,
  createCall,
  datasetCall,
  hex32,
  networkAt,
  roundFields,
} from './fixtures.ts';

const leaf = (account: string, samples = 8) => ({
  proposal: 1,
  round: 0,
  account,
  samples,
  payloadSha256: new Uint8Array(32).fill(account.charCodeAt(0)),
});

describe('pallet-bindings receipts', () => {
  it('proves every leaf against the root, and refuses a changed field, a wrong root or a forged ack', () => {
    const leaves = ['c', 'a', 'b', 'd', 'e'].map((a) => ({
      account: a,
      updateHash: updateLeafHash(leaf(a)),
    }));
    const tree = updatesTree(leaves);
    expect(tree.order).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
    for (const l of leaves) {
      const proof = tree.proof(l.account)!;
      expect(
        verifyReceipt({ leaf: leaf(l.account), acknowledged: l.updateHash, proof, updatesRoot: tree.root }),
      ).to.deep.equal({ ok: true });
      const more = verifyReceipt({ leaf: leaf(l.account, 9), proof, updatesRoot: tree.root });
      expect(more.ok ? 'ok' : more.code).to.equal('E_RECEIPT_PROOF');
    }
    const proof = tree.proof('a')!;
    const wrongRoot = verifyReceipt({ leaf: leaf('a'), proof, updatesRoot: hex32(0x11) });
    expect(wrongRoot.ok ? 'ok' : wrongRoot.code).to.equal('E_RECEIPT_PROOF');
    const forged = verifyReceipt({
      leaf: leaf('a'),
      acknowledged: updateLeafHash(leaf('b')),
      proof,
      updatesRoot: tree.root,
    });
    expect(forged.ok ? 'ok' : forged.code).to.equal('E_RECEIPT_LEAF');
    expect(tree.proof('zz')).to.equal(null);
  });
});

describe('pallet-bindings submitChecked: the dry run', () => {
  const NET = networkAt(1);
  const DATA = hex32(0xd1);
  const state = reduceBlocks(initialState(), [
    callsBlock(1, [[ALICE, null, createCall()]]),
    callsBlock(2, [
      [EVE, NET, datasetCall(DATA)],
      [ALICE, NET, { type: 'proposeRound', ...roundFields(DATA) }],
    ]),
  ]);
  const signer = (address: string) => ({ address }) as unknown as KeyringPair;

  it('passes a call the reducer would take and names the rule a refused one breaks', () => {
    expect(
      dryRun(state, { signer: signer(BOB), network: NET, calls: [{ type: 'vote', proposal: 0, aye: true }] }),
    ).to.equal(null);
    const outsider = dryRun(state, {
      signer: signer(EVE),
      network: NET,
      calls: [{ type: 'vote', proposal: 0, aye: true }],
    });
    expect(outsider?.code).to.equal('E_NOT_MEMBER');
    const unknown = dryRun(state, {
      signer: signer(BOB),
      network: NET,
      calls: [{ type: 'vote', proposal: 9, aye: true }],
    });
    expect(unknown?.code).to.match(/^E_/);
  });

  it('refuses a finalizeRound that could not be encoded before anything is signed', () => {
    expect(() =>
      dryRun(state, {
        signer: signer(ALICE),
        network: NET,
        calls: [
          {
            type: 'finalizeRound',
            proposal: 0,
            round: 0,
            checkpoint: { id: hex32(0xc1), bytes: 10, uri: 'http://127.0.0.1:1' },
            updatesRoot: hex32(0xe1),
            contributors: [{ account: EVE, samples: 2 ** 53, shards: [0] }],
            datasetShardsRoot: hex32(0xe2),
            metrics: { trainLoss: 1, evalLoss: 1, extra: [] },
          },
        ],
      }),
    )
      .to.throw()
      .with.property('code', 'E_BAD_CALL');
  });
});
