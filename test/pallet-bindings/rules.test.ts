// The reducer's rules against a hostile or stuck coordinator: rewards bounded by the proposal and shared by samples,
// approved proposals and open rounds that expire so the next proposal proceeds, and members removing a coordinator.
import { expect } from 'chai';
import fc from 'fast-check';
import {
  OPEN_EXPIRY_BLOCKS,
  approvedRounds,
  initialState,
  openRounds,
  reduceBlocks,
  rewardShares,
  roundExpiresAfter,
  type ChainBlock,
  type ChainCall,
  type FinalizeRound,
  type ProtocolState,
  type RoundProposal,
} from '../../pallet-bindings/index.ts';
import {
  ALICE,
  BOB,
  CHARLIE,
  DAVE,
  EVE,
  FERDIE,
  block,
  call,
  callsBlock,
  createCall,
  datasetCall,
  ext,
  hex32,
  networkAt,
  roundFields,
} from './fixtures.ts';

const NET = networkAt(1);
const DATA = hex32(0xd1);
const REWARD = '1000000000000';

/** Network (block 1), dataset and proposals 0 and 1 (block 2), both approved at block 5 by Alice and Bob. */
function approvedTwo(): ChainBlock[] {
  return [
    callsBlock(1, [[ALICE, null, createCall()]]),
    callsBlock(2, [
      [DAVE, NET, datasetCall(DATA)],
      [ALICE, NET, { type: 'proposeRound', ...roundFields(DATA, { roundDeadline: 60 }) }],
      [ALICE, NET, { type: 'proposeRound', ...roundFields(DATA, { roundDeadline: 60 }) }],
    ]),
    callsBlock(3, [
      [ALICE, NET, { type: 'vote', proposal: 0, aye: true }],
      [BOB, NET, { type: 'vote', proposal: 0, aye: true }],
      [ALICE, NET, { type: 'vote', proposal: 1, aye: true }],
      [BOB, NET, { type: 'vote', proposal: 1, aye: true }],
    ]),
    callsBlock(5, []),
  ];
}

const openBlock = (n: number, by = ALICE, proposal = 0) =>
  callsBlock(n, [[by, NET, { type: 'openRound', proposal, coordinatorEndpoint: 'ws://127.0.0.1:7000' }]]);

const finalize = (
  round: number,
  contributors: FinalizeRound['contributors'],
  id = 0xc0 + round,
): FinalizeRound => ({
  proposal: 0,
  round,
  checkpoint: { id: hex32(id), bytes: 1000, uri: 'http://127.0.0.1:8080/c' },
  updatesRoot: hex32(0xe1),
  contributors,
  datasetShardsRoot: hex32(0xe2),
  metrics: { trainLoss: 2.5, evalLoss: 2.75, extra: [] },
});

/** A finalizeRound batched (batchAll) with reward transfers, signed by `signer`. */
const finalizeBlock = (
  n: number,
  f: FinalizeRound,
  transfers: [string, string][],
  signer = ALICE,
): ChainBlock =>
  block(n, [
    ext(0, signer, {
      kind: 'batch',
      mode: 'batchAll',
      ok: true,
      calls: [
        call(NET, { type: 'finalizeRound', ...f }),
        ...transfers.map(([dest, value]): ChainCall => ({ kind: 'transfer', dest, value, ok: true })),
      ],
    }),
  ]);

const round0 = (s: ProtocolState) => s.networks[NET]!.proposals[0] as RoundProposal;
const codes = (s: ProtocolState) => s.audit.map((a) => a.code);

describe('pallet-bindings rules: rewards, expiry, coordinators', () => {
  it('refuses a finalizeRound whose batch pays more than rewardPerRound, or pays a non-contributor', () => {
    const two = [
      { account: EVE, samples: 64, shards: [0] },
      { account: FERDIE, samples: 64, shards: [1] },
    ];
    const over = reduceBlocks(initialState(), [
      ...approvedTwo(),
      openBlock(6),
      finalizeBlock(7, finalize(0, two), [
        [EVE, REWARD],
        [FERDIE, REWARD],
      ]),
    ]);
    expect(codes(over)).to.deep.equal(['E_REWARD_EXCEEDED']);
    expect(round0(over).finalized).to.have.length(0);
    // Within the total but more than one contributor's share by samples: the claim of hole 2 cannot pay off.
    const greedy = reduceBlocks(initialState(), [
      ...approvedTwo(),
      openBlock(6),
      finalizeBlock(7, finalize(0, two), [[EVE, REWARD]]),
    ]);
    expect(codes(greedy)).to.deep.equal(['E_REWARD_EXCEEDED']);
    const outsider = reduceBlocks(initialState(), [
      ...approvedTwo(),
      openBlock(6),
      finalizeBlock(7, finalize(0, two), [[ALICE, '1']]),
    ]);
    expect(codes(outsider)).to.deep.equal(['E_REWARD_NOT_CONTRIBUTOR']);
    // Shares by samples are paid: the round counts.
    const fair = reduceBlocks(initialState(), [
      ...approvedTwo(),
      openBlock(6),
      finalizeBlock(7, finalize(0, two), [
        [EVE, '500000000000'],
        [FERDIE, '500000000000'],
      ]),
    ]);
    expect(codes(fair)).to.deep.equal([]);
    expect(round0(fair).finalized).to.have.length(1);
  });

  it('shares never sum past rewardPerRound and every share the rule allows is accepted (property)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 100n }),
        fc.array(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), { minLength: 1, maxLength: 5 }),
        (reward, samples) => {
          const accounts = [BOB, CHARLIE, DAVE, EVE, FERDIE];
          const contributors = samples.map((s, i) => ({ account: accounts[i]!, samples: s, shards: [i] }));
          const shares = rewardShares(reward.toString(), contributors);
          const sum = [...shares.values()].reduce((a, b) => a + b, 0n);
          expect(sum <= reward).to.equal(true);
          const s = reduceBlocks(initialState(), [
            ...approvedTwo().map((b) =>
              b.number === 2
                ? callsBlock(2, [
                    [DAVE, NET, datasetCall(DATA)],
                    [
                      ALICE,
                      NET,
                      { type: 'proposeRound', ...roundFields(DATA, { rewardPerRound: reward.toString() }) },
                    ],
                    [ALICE, NET, { type: 'proposeRound', ...roundFields(DATA) }],
                  ])
                : b,
            ),
            openBlock(6),
            finalizeBlock(
              7,
              finalize(0, contributors),
              [...shares].filter(([, v]) => v > 0n).map(([a, v]) => [a, v.toString()]),
            ),
          ]);
          expect(codes(s)).to.deep.equal([]);
        },
      ),
      { seed: 14, numRuns: 60 },
    );
  });

  it('fails an approved proposal no coordinator opens in time, and the next one proceeds', () => {
    const decided = 5;
    const s = reduceBlocks(initialState(), [
      ...approvedTwo(),
      openBlock(decided + OPEN_EXPIRY_BLOCKS, ALICE, 1), // proposal 1: opened at its last allowed block
      openBlock(decided + OPEN_EXPIRY_BLOCKS + 1, ALICE, 0), // proposal 0: one block late
    ]);
    const n = s.networks[NET]!;
    expect(codes(s)).to.deep.equal(['E_EXPIRED']);
    expect(n.proposals[0]!.status).to.equal('failed');
    expect((n.proposals[0] as RoundProposal).failure!.reason).to.match(/^E_EXPIRED/);
    expect(n.proposals[1]!.status).to.equal('open');
    expect(approvedRounds(n)).to.deep.equal([]);
    const later = reduceBlocks(s, [openBlock(s.height + 1, ALICE, 0)]);
    expect(codes(later).at(-1)).to.equal('E_NOT_APPROVED');
  });

  it('fails an open round with no finalizeRound in time: late commits are refused, the next proposal opens', () => {
    const opened = reduceBlocks(initialState(), [...approvedTwo(), openBlock(6)]);
    const last = roundExpiresAfter(round0(opened));
    expect(last).to.equal(6 + 2 * 60 + 100);
    // A finalizeRound in time resets the clock.
    const one = reduceBlocks(opened, [
      finalizeBlock(last, finalize(0, [{ account: EVE, samples: 1, shards: [0] }]), []),
    ]);
    expect(round0(one).status).to.equal('open');
    expect(roundExpiresAfter(round0(one))).to.equal(last + 220);
    const stuck = reduceBlocks(one, [callsBlock(last + 221, [])]);
    expect(round0(stuck).status).to.equal('failed');
    expect(round0(stuck).failure).to.include({ by: '', block: last + 221 });
    const after = reduceBlocks(stuck, [
      finalizeBlock(last + 222, finalize(1, [{ account: EVE, samples: 1, shards: [0] }]), []),
      openBlock(last + 223, ALICE, 1),
    ]);
    expect(codes(after)).to.deep.equal(['E_NOT_OPEN']);
    // A finalizeRound one block past the deadline is refused in that block already.
    const late = reduceBlocks(one, [
      finalizeBlock(last + 221, finalize(1, [{ account: EVE, samples: 1, shards: [0] }]), []),
    ]);
    expect(codes(late)).to.deep.equal(['E_EXPIRED']);
    expect(openRounds(after.networks[NET]!).map((p) => p.id)).to.deep.equal([1]);
  });

  it("lets only a round's own coordinator fail or finalize it once opened", () => {
    const s = reduceBlocks(initialState(), [
      callsBlock(1, [[ALICE, null, { ...createCall(), coordinators: [ALICE, BOB] } as never]]),
      ...approvedTwo().slice(1),
      openBlock(6),
      callsBlock(7, [
        [BOB, NET, { type: 'failRound', proposal: 0, reason: 'mine now' }],
        [BOB, NET, { type: 'openRound', proposal: 0, coordinatorEndpoint: 'ws://elsewhere' }],
      ]),
      finalizeBlock(8, finalize(0, [{ account: EVE, samples: 1, shards: [0] }]), [], BOB),
    ]);
    expect(codes(s)).to.deep.equal(['E_NOT_ROUND_COORDINATOR', 'E_NOT_APPROVED', 'E_NOT_ROUND_COORDINATOR']);
    expect(round0(s)).to.include({ status: 'open', coordinator: ALICE });
  });

  it('lets the members remove a coordinator: its open rounds fail and another coordinator takes the next', () => {
    const s = reduceBlocks(initialState(), [
      callsBlock(1, [[ALICE, null, { ...createCall(), coordinators: [ALICE, BOB] } as never]]),
      ...approvedTwo().slice(1),
      openBlock(6),
      callsBlock(7, [
        [CHARLIE, NET, { type: 'proposeMembership', action: 'RemoveCoordinator', account: ALICE }],
      ]),
      callsBlock(8, [
        [BOB, NET, { type: 'vote', proposal: 2, aye: true }],
        [CHARLIE, NET, { type: 'vote', proposal: 2, aye: true }],
      ]),
      callsBlock(10, []),
      openBlock(11, BOB, 1),
      openBlock(12, ALICE, 1),
    ]);
    const n = s.networks[NET]!;
    expect(n.coordinators).to.deep.equal([BOB]);
    expect(round0(s).status).to.equal('failed');
    expect(round0(s).failure!.reason).to.match(/^E_COORDINATOR_REMOVED/);
    expect(n.proposals[1]).to.include({ status: 'open', coordinator: BOB });
    expect(codes(s)).to.deep.equal(['E_NOT_COORDINATOR']);
    // The last coordinator cannot be voted out (the network would have nobody to run rounds).
    const last = reduceBlocks(s, [
      callsBlock(13, [
        [CHARLIE, NET, { type: 'proposeMembership', action: 'RemoveCoordinator', account: BOB }],
      ]),
    ]);
    expect(codes(last).at(-1)).to.equal('E_LAST_COORDINATOR');
  });
});
