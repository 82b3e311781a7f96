// The reducer on plain blocks: the DAO's life cycle, its rules, batch outcomes, ignored payloads, purity.
import { expect } from 'chai';
import {
  MAGIC,
  approvedRounds,
  certifiedCheckpoints,
  getNetwork,
  getRound,
  initialState,
  isCoordinator,
  isMember,
  openRounds,
  reduceBlocks,
  type ChainBlock,
  type Hex32,
  type ProtocolState,
  type RoundProposal,
} from '../../pallet-bindings/index.ts';
import {
  ALICE,
  BOB,
  CHARLIE,
  DAVE,
  EVE,
  block,
  call,
  callsBlock,
  createCall,
  datasetCall,
  ext,
  hex32,
  networkAt,
  remark,
  roundFields,
} from './fixtures.ts';

const NET = networkAt(1);
const DATA = hex32(0xd1);
const CKPT = hex32(0xc1);

/** Block 1 creates the network, block 2 registers a dataset and proposes round 0 (deadline 2 + 3 = 5). */
function genesis(): ChainBlock[] {
  return [
    callsBlock(1, [[ALICE, null, createCall()]]),
    callsBlock(2, [
      [DAVE, NET, datasetCall(DATA)],
      [ALICE, NET, { type: 'proposeRound', ...roundFields(DATA) }],
    ]),
  ];
}

const net = (s: ProtocolState) => s.networks[NET]!;
const codes = (s: ProtocolState) => s.audit.map((a) => a.code);

describe('pallet-bindings reducer', () => {
  it('creates a network with an id derived from its extrinsic', () => {
    const s = reduceBlocks(initialState(), genesis());
    expect(Object.keys(s.networks)).to.deep.equal([NET]);
    expect(net(s)).to.include({ name: 'test-net', founder: ALICE, votingPeriod: 3 });
    expect(net(s).members).to.deep.equal([ALICE, BOB, CHARLIE]);
    expect(net(s).datasets[DATA]).to.include({ owner: DAVE, records: 100 });
    expect(net(s).proposals[0]).to.include({ status: 'voting', deadline: 5, ayesNeeded: 2 });
    expect(s.height).to.equal(2);
  });

  it('approves a round at its deadline when two thirds vote aye, then opens, finalizes with rewards and certifies', () => {
    const s = reduceBlocks(initialState(), [
      ...genesis(),
      callsBlock(3, [
        [ALICE, NET, { type: 'vote', proposal: 0, aye: true }],
        [BOB, NET, { type: 'vote', proposal: 0, aye: true }],
      ]),
      callsBlock(4, []),
      callsBlock(5, [[CHARLIE, NET, { type: 'vote', proposal: 0, aye: false }]]),
      callsBlock(6, [
        [ALICE, NET, { type: 'openRound', proposal: 0, coordinatorEndpoint: 'ws://127.0.0.1:7000' }],
      ]),
      block(7, [
        ext(0, ALICE, {
          kind: 'batch',
          mode: 'batchAll',
          ok: true,
          calls: [
            call(NET, {
              type: 'finalizeRound',
              proposal: 0,
              round: 0,
              checkpoint: { id: CKPT, bytes: 1000, uri: 'http://127.0.0.1:8080/c' },
              updatesRoot: hex32(0xe1),
              contributors: [{ account: EVE, samples: 64, shards: [0, 1] }],
              datasetShardsRoot: hex32(0xe2),
              metrics: { trainLoss: 2.5, evalLoss: 2.75, extra: [{ name: 'accuracy', value: 0.5 }] },
            }),
            { kind: 'transfer', dest: EVE, value: '1000000000000', ok: true },
          ],
        }),
      ]),
      callsBlock(8, [
        [ALICE, NET, { type: 'attest', checkpoint: CKPT, evalLoss: 2.75, verdict: true }],
        [BOB, NET, { type: 'attest', checkpoint: CKPT, evalLoss: 2.8, verdict: true }],
      ]),
    ]);
    const p = net(s).proposals[0] as RoundProposal;
    expect(p).to.include({ ayes: 2, nays: 1, decidedAt: 5, coordinator: ALICE, openedAt: 6, status: 'open' });
    expect(p.finalized).to.have.length(1);
    expect(p.finalized[0]!.rewards).to.deep.equal([{ account: EVE, amount: '1000000000000' }]);
    expect(p.finalized[0]!.contributors[0]!.account).to.equal(EVE);
    expect(net(s).checkpoints[CKPT]).to.include({ certified: true, certifiedAt: 8, proposal: 0, round: 0 });
    expect(s.audit).to.deep.equal([]);
    // The queries other folders use.
    const n = getNetwork(s, NET);
    expect(openRounds(n, ALICE).map((r) => r.id)).to.deep.equal([0]);
    expect(openRounds(n, BOB)).to.deep.equal([]);
    expect(approvedRounds(n)).to.deep.equal([]);
    expect(certifiedCheckpoints(n).map((c) => c.id)).to.deep.equal([CKPT]);
    expect(getRound(n, 0).finalized).to.have.length(1);
    expect([
      isMember(n, BOB),
      isMember(n, DAVE),
      isCoordinator(n, ALICE),
      isCoordinator(n, BOB),
    ]).to.deep.equal([true, false, true, false]);
    expect(() => getNetwork(s, hex32(0x42)))
      .to.throw()
      .with.property('code', 'E_UNKNOWN_NETWORK');
    expect(() => getRound(n, 9))
      .to.throw()
      .with.property('code', 'E_UNKNOWN_PROPOSAL');
  });

  it('rejects a proposal without quorum', () => {
    const s = reduceBlocks(initialState(), [
      ...genesis(),
      callsBlock(3, [[ALICE, NET, { type: 'vote', proposal: 0, aye: true }]]),
      callsBlock(5, []),
    ]);
    expect(net(s).proposals[0]).to.include({ status: 'rejected', decidedAt: 5, ayes: 1 });
  });

  it('records a non-member proposal, a double vote and a late vote in the audit, changing nothing', () => {
    const s = reduceBlocks(initialState(), [
      ...genesis(),
      callsBlock(3, [
        [DAVE, NET, { type: 'proposeRound', ...roundFields(DATA) }],
        [BOB, NET, { type: 'vote', proposal: 0, aye: true }],
        [BOB, NET, { type: 'vote', proposal: 0, aye: false }],
      ]),
      callsBlock(6, [[CHARLIE, NET, { type: 'vote', proposal: 0, aye: true }]]),
    ]);
    expect(codes(s)).to.deep.equal(['E_NOT_MEMBER', 'E_DOUBLE_VOTE', 'E_VOTING_CLOSED']);
    expect(s.audit[0]).to.include({
      block: 3,
      extrinsic: 0,
      signer: DAVE,
      callType: 'proposeRound',
      network: NET,
    });
    expect(s.audit[2]).to.include({ block: 6, signer: CHARLIE, callType: 'vote' });
    expect(net(s).proposals).to.have.length(1);
    expect(net(s).proposals[0]).to.include({ ayes: 1, nays: 0, status: 'rejected' });
  });

  it('changes the membership through governance', () => {
    const s = reduceBlocks(initialState(), [
      ...genesis(),
      callsBlock(3, [
        [BOB, NET, { type: 'proposeMembership', action: 'Add', account: DAVE }],
        [ALICE, NET, { type: 'vote', proposal: 1, aye: true }],
        [CHARLIE, NET, { type: 'vote', proposal: 1, aye: true }],
        [DAVE, NET, { type: 'vote', proposal: 1, aye: true }],
      ]),
      callsBlock(6, []),
      callsBlock(7, [[DAVE, NET, { type: 'proposeMembership', action: 'Remove', account: CHARLIE }]]),
    ]);
    // Dave could not vote on his own admission: he was not a member when it was proposed.
    expect(codes(s)).to.deep.equal(['E_NOT_MEMBER']);
    expect(s.audit[0]).to.include({ signer: DAVE, callType: 'vote' });
    expect(net(s).proposals[1]).to.include({ status: 'approved', applied: true, decidedAt: 6 });
    expect(net(s).members).to.deep.equal([ALICE, BOB, CHARLIE, DAVE]);
    expect(net(s).proposals[2]).to.include({ proposer: DAVE, ayesNeeded: 3 });
    expect(net(s).proposals[2]!.electorate).to.have.length(4);
  });

  it('counts remarks by outcome: failed extrinsics, interrupted batches and failed forceBatch items do not count', () => {
    const vote = (aye: boolean, ok = true) => call(NET, { type: 'vote', proposal: 0, aye }, ok);
    const s = reduceBlocks(initialState(), [
      ...genesis(),
      block(3, [
        ext(0, ALICE, vote(true), false),
        ext(1, BOB, {
          kind: 'batch',
          mode: 'batch',
          ok: true,
          calls: [{ kind: 'transfer', dest: EVE, value: '1', ok: false }, vote(true, false)],
        }),
        ext(2, CHARLIE, {
          kind: 'batch',
          mode: 'forceBatch',
          ok: true,
          calls: [{ kind: 'other', name: 'x', ok: false }, vote(false)],
        }),
        ext(3, null, vote(true)),
      ]),
    ]);
    expect(net(s).proposals[0]).to.include({ ayes: 0, nays: 1 });
    expect(net(s).proposals[0]!.votes).to.deep.equal({ [CHARLIE]: false });
  });

  it('ignores malformed payloads, unknown versions, unknown and other networks with a reason', () => {
    const other = hex32(0x99) as Hex32;
    const blocks = [
      ...genesis(),
      block(3, [
        ext(0, BOB, remark(new Uint8Array([...MAGIC, 1, 1, 2, 3]))),
        ext(1, BOB, remark(new Uint8Array([...MAGIC, 9]))),
        ext(2, BOB, call(other, { type: 'deregisterWorker' })),
        ext(3, BOB, remark(new TextEncoder().encode('hello, not ours'))),
      ]),
    ];
    const all = reduceBlocks(initialState(), blocks);
    expect(all.ignored.map((i) => i.code)).to.deep.equal([
      'E_MALFORMED_PAYLOAD',
      'E_UNKNOWN_VERSION',
      'E_UNKNOWN_NETWORK',
    ]);
    const onlyOther = reduceBlocks(initialState({ only: other }), blocks);
    expect(onlyOther.networks).to.deep.equal({});
    expect(onlyOther.ignored.filter((i) => i.code === 'E_OTHER_NETWORK')).to.have.length(3);
  });

  it('fine-tunes only from a certified checkpoint', () => {
    const s = reduceBlocks(initialState(), [
      ...genesis(),
      callsBlock(3, [
        [
          ALICE,
          NET,
          { type: 'proposeRound', ...roundFields(DATA, { kind: 'Finetune', baseCheckpoint: CKPT }) },
        ],
        [ALICE, NET, { type: 'proposeRound', ...roundFields(DATA, { kind: 'Finetune' }) }],
        [ALICE, NET, { type: 'proposeRound', ...roundFields(hex32(0x77)) }],
        [ALICE, NET, { type: 'openRound', proposal: 0, coordinatorEndpoint: '' }],
        [BOB, NET, { type: 'attest', checkpoint: CKPT, evalLoss: 1, verdict: true }],
      ]),
    ]);
    expect(codes(s)).to.deep.equal([
      'E_BASE_NOT_CERTIFIED',
      'E_BASE_REQUIRED',
      'E_UNKNOWN_DATASET',
      'E_NOT_APPROVED',
      'E_UNKNOWN_CHECKPOINT',
    ]);
  });

  it('lets the coordinator fail an approved round, and nobody else', () => {
    const s = reduceBlocks(initialState(), [
      ...genesis(),
      callsBlock(3, [
        [ALICE, NET, { type: 'vote', proposal: 0, aye: true }],
        [BOB, NET, { type: 'vote', proposal: 0, aye: true }],
      ]),
      callsBlock(5, []),
      callsBlock(6, [
        [BOB, NET, { type: 'failRound', proposal: 0, reason: 'nope' }],
        [ALICE, NET, { type: 'failRound', proposal: 0, reason: 'too few workers' }],
        [ALICE, NET, { type: 'openRound', proposal: 0, coordinatorEndpoint: '' }],
      ]),
    ]);
    expect(codes(s)).to.deep.equal(['E_NOT_COORDINATOR', 'E_NOT_APPROVED']);
    expect(net(s).proposals[0]).to.include({ status: 'failed' });
    expect((net(s).proposals[0] as RoundProposal).failure).to.deep.equal({
      reason: 'too few workers',
      block: 6,
      by: ALICE,
    });
  });

  it('never mutates the state it is given, and skips blocks it already folded', () => {
    const blocks = genesis();
    const s1 = reduceBlocks(initialState(), blocks.slice(0, 1));
    const before = JSON.stringify(s1);
    const s2 = reduceBlocks(s1, blocks.slice(1));
    expect(JSON.stringify(s1)).to.equal(before);
    expect(s2).to.not.equal(s1);
    expect(reduceBlocks(s2, blocks)).to.equal(s2);
  });
});
