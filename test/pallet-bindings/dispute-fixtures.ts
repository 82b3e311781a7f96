// The disputes tests' chain: a network of three members (Alice, Bob, Charlie; quorum 2/3) whose coordinator Dave has
// finalized round 0 of a three-round proposal, and the calls and readers the tests build on it.
import {
  PalletError,
  initialState,
  reduceBlocks,
  type ChainBlock,
  type FedtuneCall,
  type FinalizeRound,
  type NetworkState,
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
  callsBlock,
  datasetCall,
  hex32,
  networkAt,
  roundFields,
} from './fixtures.ts';

export const NET = networkAt(1);
export const DATA = hex32(0xd1);
export const EVIDENCE = hex32(0xee);
export const CKPT0 = hex32(0xc0);

/** Members Alice, Bob, Charlie (quorum 2/3: 2 needed); coordinators Dave and Alice. */
export const create: FedtuneCall = {
  type: 'createNetwork',
  name: 'disputes',
  members: [ALICE, BOB, CHARLIE],
  quorum: { numerator: 2, denominator: 3 },
  votingPeriod: 3,
  coordinators: [DAVE, ALICE],
};

export const finalize = (round: number, contributors = [EVE, FERDIE]): FedtuneCall & FinalizeRound => ({
  type: 'finalizeRound',
  proposal: 0,
  round,
  checkpoint: { id: hex32(0xc0 + round), bytes: 10, uri: 'http://127.0.0.1:8080/c' },
  updatesRoot: hex32(0xe1),
  contributors: contributors.map((account, i) => ({ account, samples: 8, shards: [i] })),
  datasetShardsRoot: hex32(0xe2),
  metrics: { trainLoss: 2, evalLoss: 2.5, extra: [] },
});

/**
 * Round proposals 0 (3 rounds) and 1, approved at block 5; Dave opens 0 at block 6 and finalizes its round 0 at block
 * 7 with Eve and Ferdie as contributors; proposal 2 is a membership change.
 */
export function finalized(): ChainBlock[] {
  return [
    callsBlock(1, [[ALICE, null, create]]),
    callsBlock(2, [
      [ALICE, NET, datasetCall(DATA)],
      [
        ALICE,
        NET,
        { type: 'proposeRound', ...roundFields(DATA, { rounds: 3, roundDeadline: 60, rewardPerRound: '0' }) },
      ],
      [
        ALICE,
        NET,
        { type: 'proposeRound', ...roundFields(DATA, { roundDeadline: 60, rewardPerRound: '0' }) },
      ],
      [ALICE, NET, { type: 'proposeMembership', action: 'Add', account: DAVE }],
    ]),
    callsBlock(3, [
      [ALICE, NET, { type: 'vote', proposal: 0, aye: true }],
      [BOB, NET, { type: 'vote', proposal: 0, aye: true }],
      [ALICE, NET, { type: 'vote', proposal: 1, aye: true }],
      [BOB, NET, { type: 'vote', proposal: 1, aye: true }],
    ]),
    callsBlock(5, []),
    callsBlock(6, [
      [DAVE, NET, { type: 'openRound', proposal: 0, coordinatorEndpoint: 'ws://127.0.0.1:7000' }],
    ]),
    callsBlock(7, [[DAVE, NET, finalize(0)]]),
  ];
}

export const dispute = (
  accused: string,
  overrides: Partial<Extract<FedtuneCall, { type: 'dispute' }>> = {},
): FedtuneCall => ({
  type: 'dispute',
  proposal: 0,
  round: 0,
  accused,
  code: 'E_WORK_MISMATCH',
  evidence: EVIDENCE,
  ...overrides,
});
export const uphold = (id: number): FedtuneCall => ({ type: 'upholdDispute', dispute: id });

export const run = (...blocks: ChainBlock[]): ProtocolState =>
  reduceBlocks(initialState(), [...finalized(), ...blocks]);
export const net = (s: ProtocolState): NetworkState => s.networks[NET]!;
export const codes = (s: ProtocolState) => s.audit.map((a) => a.code);
export const round0 = (s: ProtocolState) => net(s).proposals[0] as RoundProposal;

export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as PalletError).code;
  }
  return undefined;
}
