// docs/protocol.md as a contract: its enum indices and every code the reducer records, and its "which code wins" examples, against the reducer.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  CALL_TYPES,
  FEDTUNE_TYPES,
  initialState,
  reduceBlocks,
  type ChainBlock,
  type ChainCall,
  type FedtuneCall,
  type ProtocolState,
  type RoundProposal,
} from '../../pallet-bindings/index.ts';
import {
  ALICE,
  BOB,
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

const read = (path: string) => readFileSync(fileURLToPath(new URL(path, import.meta.url)), 'utf8');
/** The protocol's document and its part on verification and disputes, where the dispute codes are described. */
const DOC = read('../../docs/protocol.md') + read('../../docs/verification.md');

const NET = networkAt(1);
const DATA = hex32(0xd1);

/** Network (block 1), dataset and round proposal 0 with rewardPerRound 100 (block 2), approved at block 5. */
const approved = (): ChainBlock[] => [
  callsBlock(1, [[ALICE, null, createCall()]]),
  callsBlock(2, [
    [ALICE, NET, datasetCall(DATA)],
    [
      ALICE,
      NET,
      { type: 'proposeRound', ...roundFields(DATA, { roundDeadline: 10, rewardPerRound: '100' }) },
    ],
  ]),
  callsBlock(3, [
    [ALICE, NET, { type: 'vote', proposal: 0, aye: true }],
    [BOB, NET, { type: 'vote', proposal: 0, aye: true }],
  ]),
  callsBlock(5, []),
];
const open = (n: number): ChainBlock =>
  callsBlock(n, [
    [ALICE, NET, { type: 'openRound', proposal: 0, coordinatorEndpoint: 'ws://127.0.0.1:7000' }],
  ]);
const finalize = (round: number, checkpoint: number): FedtuneCall => ({
  type: 'finalizeRound',
  proposal: 0,
  round,
  checkpoint: { id: hex32(checkpoint), bytes: 1, uri: 'http://127.0.0.1:8080/c' },
  updatesRoot: hex32(0xe1),
  contributors: [
    { account: EVE, samples: 1, shards: [0] },
    { account: FERDIE, samples: 1, shards: [1] },
  ],
  datasetShardsRoot: hex32(0xe2),
  metrics: { trainLoss: 1, evalLoss: 1, extra: [] },
});
/** A finalizeRound in one batchAll with transfers [account, planck]. */
const finalizeBlock = (n: number, f: FedtuneCall, transfers: [string, string][]): ChainBlock =>
  block(n, [
    ext(0, ALICE, {
      kind: 'batch',
      mode: 'batchAll',
      ok: true,
      calls: [
        call(NET, f),
        ...transfers.map(([dest, value]): ChainCall => ({ kind: 'transfer', dest, value, ok: true })),
      ],
    }),
  ]);
const codes = (s: ProtocolState) => s.audit.map((a) => a.code);
const round0 = (s: ProtocolState) => s.networks[NET]!.proposals[0] as RoundProposal;

describe('docs/protocol.md as a contract', () => {
  it('lists the calls and the membership actions with their enum indices', () => {
    for (const [i, name] of CALL_TYPES.entries()) expect(DOC).to.include(`| ${i} | \`${name}\` |`);
    const actions = (FEDTUNE_TYPES.FedtuneMembershipAction as { _enum: string[] })._enum;
    expect(DOC).to.include(`action: enum {${actions.map((a, i) => `${a} = ${i}`).join(', ')}}`);
  });

  it('names every code the reducer records', () => {
    const sources = [
      'reducer.ts',
      'reduce-dao.ts',
      'reduce-rounds.ts',
      'reduce-verdicts.ts',
      'decide.ts',
      'rewards.ts',
      'codec.ts',
      'registrations.ts',
    ].map((f) => read(`../../pallet-bindings/${f}`));
    const found = new Set(sources.flatMap((s) => [...s.matchAll(/\bE_[A-Z_]+\b/g)].map((m) => m[0])));
    // Raised only by encoding (a client's own mistake, never recorded) or before the reducer looks (no magic).
    for (const local of [
      'E_NOT_FEDTUNE',
      'E_BAD_CALL',
      'E_BAD_NETWORK_ID',
      'E_PAYLOAD_TOO_LARGE',
      'E_BAD_ACCOUNT',
    ])
      found.delete(local);
    expect([...found].filter((code) => !DOC.includes(`\`${code}`))).to.deep.equal([]);
  });

  it('finalizeRound: the checkpoint before expiry, expiry before rewards, a non-contributor before the total', () => {
    const late = 5 + 1 + 2 * 10 + 100 + 1; // one block past the round limit of a round opened at block 6
    const reused = reduceBlocks(initialState(), [
      ...approved(),
      open(6),
      finalizeBlock(7, finalize(0, 0xc0), []),
      // Round 1 past its limit (counted from round 0's block 7) with round 0's checkpoint id.
      finalizeBlock(late + 1, finalize(1, 0xc0), []),
    ]);
    expect(codes(reused)).to.deep.equal(['E_CHECKPOINT_EXISTS']);
    const overpaid = reduceBlocks(initialState(), [
      ...approved(),
      open(6),
      finalizeBlock(late, finalize(0, 0xc0), [[EVE, '1000']]),
    ]);
    expect(codes(overpaid)).to.deep.equal(['E_EXPIRED']);
    const both = reduceBlocks(initialState(), [
      ...approved(),
      open(6),
      finalizeBlock(7, finalize(0, 0xc0), [
        [EVE, '1000'],
        [ALICE, '1'],
      ]),
    ]);
    expect(codes(both)).to.deep.equal(['E_REWARD_NOT_CONTRIBUTOR']);
    const fair = reduceBlocks(initialState(), [
      ...approved(),
      open(6),
      finalizeBlock(7, finalize(0, 0xc0), [
        [EVE, '50'],
        [FERDIE, '50'],
      ]),
    ]);
    expect(codes(fair)).to.deep.equal([]);
    expect(round0(fair).finalized[0]!.rewards).to.deep.equal([
      { account: EVE, amount: '50' },
      { account: FERDIE, amount: '50' },
    ]);
  });

  it('expiry: E_EXPIRED in the first block past the limit, a failRound there still counts, E_NOT_APPROVED after', () => {
    const limit = 5 + 600;
    const inTime = reduceBlocks(initialState(), [...approved(), open(limit)]);
    expect(round0(inTime).status).to.equal('open');
    const late = reduceBlocks(initialState(), [...approved(), callsBlock(limit, []), open(limit + 1)]);
    expect(codes(late)).to.deep.equal(['E_EXPIRED']);
    expect(round0(late).failure).to.deep.include({ block: limit + 1, by: '' });
    expect(round0(late).failure!.reason).to.match(/^E_EXPIRED: /);
    const after = reduceBlocks(initialState(), [...approved(), callsBlock(limit + 1, []), open(limit + 2)]);
    expect(codes(after)).to.deep.equal(['E_NOT_APPROVED']);
    const failed = reduceBlocks(initialState(), [
      ...approved(),
      callsBlock(limit + 1, [[ALICE, NET, { type: 'failRound', proposal: 0, reason: 'no workers' }]]),
    ]);
    expect(codes(failed)).to.deep.equal([]);
    expect(round0(failed).failure).to.deep.equal({ reason: 'no workers', block: limit + 1, by: ALICE });
  });
});
