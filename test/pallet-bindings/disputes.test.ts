// Verification decides certification: a "no" attest carries its failure code, and a member's dispute, upheld by a
// quorum of members, bars the accused worker from further rounds or the accused coordinator from running any.
import { expect } from 'chai';
import { u8aToHex } from '@polkadot/util';
import {
  CALL_TYPES,
  PalletError,
  decodePayload,
  decodeSnapshot,
  encodePayload,
  encodeSnapshot,
  initialState,
  isBarredCoordinator,
  isBarredWorker,
  isFailureCode,
  reduceBlocks,
  type ChainBlock,
  type FedtuneCall,
  type FinalizeRound,
  type NetworkState,
  type ProtocolState,
  type RoundProposal,
} from '../../pallet-bindings/index.ts';
import { Packr } from 'msgpackr';
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

const NET = networkAt(1);
const DATA = hex32(0xd1);
const EVIDENCE = hex32(0xee);
const CKPT0 = hex32(0xc0);

/** Members Alice, Bob, Charlie (quorum 2/3: 2 needed); coordinators Dave and Alice. */
const create: FedtuneCall = {
  type: 'createNetwork',
  name: 'disputes',
  members: [ALICE, BOB, CHARLIE],
  quorum: { numerator: 2, denominator: 3 },
  votingPeriod: 3,
  coordinators: [DAVE, ALICE],
};

const finalize = (round: number, contributors = [EVE, FERDIE]): FedtuneCall & FinalizeRound => ({
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
function finalized(): ChainBlock[] {
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

const dispute = (
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
const uphold = (id: number): FedtuneCall => ({ type: 'upholdDispute', dispute: id });

const run = (...blocks: ChainBlock[]): ProtocolState =>
  reduceBlocks(initialState(), [...finalized(), ...blocks]);
const net = (s: ProtocolState): NetworkState => s.networks[NET]!;
const codes = (s: ProtocolState) => s.audit.map((a) => a.code);
const round0 = (s: ProtocolState) => net(s).proposals[0] as RoundProposal;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as PalletError).code;
  }
  return undefined;
}

describe('pallet-bindings disputes and coded attests', () => {
  describe('codec', () => {
    it('keeps an attest without a code byte for byte as before (variant 9) and sends a coded no as attestWithCode (11)', () => {
      const plain = encodePayload({
        network: hex32(0xab),
        call: { type: 'attest', checkpoint: hex32(0xcc), evalLoss: 0.5, verdict: false },
      });
      // f64 0.5 little-endian is 00 00 00 00 00 00 e0 3f.
      expect(u8aToHex(plain.subarray(38))).to.equal('0x09' + 'cc'.repeat(32) + '000000000000e03f' + '00');
      const coded: FedtuneCall = {
        type: 'attest',
        checkpoint: hex32(0xcc),
        evalLoss: 0.5,
        verdict: false,
        code: 'E_AGGREGATE_MISMATCH',
      };
      const bytes = encodePayload({ network: hex32(0xab), call: coded });
      expect(bytes[38]).to.equal(11);
      expect(CALL_TYPES[11]).to.equal('attestWithCode');
      // Text: compact length (20 << 2 = 0x50), then the ASCII bytes.
      expect(u8aToHex(bytes.subarray(39 + 32 + 8))).to.equal(
        '0x50' + Buffer.from('E_AGGREGATE_MISMATCH').toString('hex'),
      );
      expect(decodePayload(bytes).call).to.deep.equal(coded);
      expect(decodePayload(plain).call).to.not.have.property('code');
    });

    it('refuses to encode a yes with a code (E_BAD_CALL)', () => {
      expect(
        codeOf(() =>
          encodePayload({
            network: hex32(1),
            call: { type: 'attest', checkpoint: hex32(2), evalLoss: 1, verdict: true, code: 'E_X' },
          }),
        ),
      ).to.equal('E_BAD_CALL');
    });

    it('round-trips dispute (12) and upholdDispute (13)', () => {
      for (const [call, index] of [
        [dispute(EVE), 12],
        [uphold(7), 13],
      ] as const) {
        const bytes = encodePayload({ network: hex32(3), call });
        expect(bytes[38]).to.equal(index);
        expect(CALL_TYPES[index]).to.equal(call.type);
        expect(decodePayload(bytes).call).to.deep.equal(call);
      }
    });

    it('tells failure codes apart: upper-case ASCII, digits and _, at most 32 characters', () => {
      for (const good of ['E_AGGREGATE_MISMATCH', 'E_WORK_MISMATCH', 'X', `E_${'A'.repeat(30)}`])
        expect(isFailureCode(good), good).to.equal(true);
      for (const bad of ['', 'e_lower', '_E', '9E', 'E MISMATCH', `E_${'A'.repeat(31)}`, 'E_\u001b[31m', 7])
        expect(isFailureCode(bad), String(bad)).to.equal(false);
    });
  });

  describe('attest with a code', () => {
    it("keeps each attester its verdict and the no's code", () => {
      const s = run(
        callsBlock(8, [
          [
            BOB,
            NET,
            { type: 'attest', checkpoint: CKPT0, evalLoss: 9, verdict: false, code: 'E_AGGREGATE_MISMATCH' },
          ],
          [ALICE, NET, { type: 'attest', checkpoint: CKPT0, evalLoss: 2.5, verdict: true }],
          [CHARLIE, NET, { type: 'attest', checkpoint: CKPT0, evalLoss: 9, verdict: false }],
        ]),
      );
      expect(codes(s)).to.deep.equal([]);
      const attests = net(s).checkpoints[CKPT0]!.attests;
      expect(attests[BOB]).to.deep.equal({
        evalLoss: 9,
        verdict: false,
        code: 'E_AGGREGATE_MISMATCH',
        block: 8,
      });
      expect(attests[ALICE]!.code).to.equal(null);
      expect(attests[CHARLIE]!.code).to.equal(null);
      expect(net(s).checkpoints[CKPT0]!.certified).to.equal(false);
    });

    it('refuses a code that is not a failure code (E_BAD_CODE), after the member check', () => {
      const bad = {
        type: 'attest' as const,
        checkpoint: CKPT0,
        evalLoss: 9,
        verdict: false,
        code: 'not a code',
      };
      const s = run(
        callsBlock(8, [
          [BOB, NET, bad],
          [EVE, NET, bad],
        ]),
      );
      expect(codes(s)).to.deep.equal(['E_BAD_CODE', 'E_NOT_MEMBER']);
      expect(net(s).checkpoints[CKPT0]!.attests).to.deep.equal({});
    });
  });

  describe('dispute and upholdDispute: the rules', () => {
    it('refuses a dispute by a non-member, with a bad code, on an unknown or membership proposal', () => {
      const s = run(
        callsBlock(8, [
          [EVE, NET, dispute(FERDIE)],
          [BOB, NET, dispute(EVE, { code: 'e_work' })],
          [BOB, NET, dispute(EVE, { code: `E_${'X'.repeat(31)}` })],
          [BOB, NET, dispute(EVE, { proposal: 9 })],
          [BOB, NET, dispute(EVE, { proposal: 2 })],
          // Two rules broken: the member check comes first.
          [EVE, NET, dispute(FERDIE, { code: 'bad' })],
        ]),
      );
      expect(codes(s)).to.deep.equal([
        'E_NOT_MEMBER',
        'E_BAD_CODE',
        'E_BAD_CODE',
        'E_UNKNOWN_PROPOSAL',
        'E_NOT_ROUND',
        'E_NOT_MEMBER',
      ]);
      expect(net(s).disputes).to.deep.equal([]);
    });

    it('needs a finalized round, and an accused that contributed to it or coordinated it', () => {
      const s = run(
        callsBlock(8, [
          [BOB, NET, dispute(EVE, { round: 1 })],
          [BOB, NET, dispute(EVE, { proposal: 1 })],
          [BOB, NET, dispute(CHARLIE)],
          [BOB, NET, dispute(ALICE)], // a coordinator of the network, but not of this round
        ]),
      );
      expect(codes(s)).to.deep.equal([
        'E_ROUND_NOT_FINALIZED',
        'E_ROUND_NOT_FINALIZED',
        'E_NOT_IN_ROUND',
        'E_NOT_IN_ROUND',
      ]);
    });

    it('opens a dispute with the disputer as its first uphold; one open dispute per round and accused', () => {
      const s = run(
        callsBlock(8, [
          [BOB, NET, dispute(EVE)],
          [CHARLIE, NET, dispute(EVE, { code: 'E_UPDATE_HASH' })],
          [CHARLIE, NET, dispute(FERDIE)],
        ]),
      );
      expect(codes(s)).to.deep.equal(['E_DISPUTE_EXISTS']);
      expect(net(s).disputes).to.deep.equal([
        {
          id: 0,
          proposal: 0,
          round: 0,
          accused: EVE,
          code: 'E_WORK_MISMATCH',
          evidence: EVIDENCE,
          disputer: BOB,
          openedAt: 8,
          roles: ['worker'],
          upholds: { [BOB]: 8 },
          status: 'open',
          upheldAt: null,
        },
        {
          id: 1,
          proposal: 0,
          round: 0,
          accused: FERDIE,
          code: 'E_WORK_MISMATCH',
          evidence: EVIDENCE,
          disputer: CHARLIE,
          openedAt: 8,
          roles: ['worker'],
          upholds: { [CHARLIE]: 8 },
          status: 'open',
          upheldAt: null,
        },
      ]);
      expect(isBarredWorker(net(s), EVE)).to.equal(false);
    });

    it('refuses an uphold by a non-member, of an unknown dispute, twice by one member, or of an upheld dispute', () => {
      const s = run(
        callsBlock(8, [[BOB, NET, dispute(EVE)]]),
        callsBlock(9, [
          [EVE, NET, uphold(0)],
          [ALICE, NET, uphold(5)],
          [BOB, NET, uphold(0)], // the disputer's dispute was its uphold
          [ALICE, NET, uphold(0)], // quorum: upheld
          [CHARLIE, NET, uphold(0)],
        ]),
      );
      expect(codes(s)).to.deep.equal([
        'E_NOT_MEMBER',
        'E_UNKNOWN_DISPUTE',
        'E_DOUBLE_UPHOLD',
        'E_DISPUTE_UPHELD',
      ]);
      expect(net(s).disputes[0]).to.deep.include({
        status: 'upheld',
        upheldAt: 9,
        upholds: { [BOB]: 8, [ALICE]: 9 },
      });
    });
  });

  describe('what an upheld dispute does', () => {
    it('bars a worker at quorum (2 of 3 members), and not before', () => {
      const one = run(callsBlock(8, [[BOB, NET, dispute(EVE)]]));
      expect(net(one).barredWorkers).to.deep.equal({});
      const two = run(callsBlock(8, [[BOB, NET, dispute(EVE)]]), callsBlock(9, [[CHARLIE, NET, uphold(0)]]));
      expect(net(two).barredWorkers).to.deep.equal({
        [EVE]: { dispute: 0, code: 'E_WORK_MISMATCH', block: 9 },
      });
      expect(isBarredWorker(net(two), EVE)).to.equal(true);
      expect(isBarredWorker(net(two), FERDIE)).to.equal(false);
      // A worker bar is not a coordinator bar, and the round goes on.
      expect(net(two).barredCoordinators).to.deep.equal({});
      expect(round0(two).status).to.equal('open');
    });

    it('counts upholds by current members only, against the current quorum', () => {
      // Bob disputes, then Bob is removed from the members (Alice, Charlie vote; decided at block 11): Charlie's
      // uphold is one of two current members' upholds needed (2/3 of 2 = 2), so the dispute stays open.
      const s = run(
        callsBlock(8, [
          [BOB, NET, dispute(EVE)],
          [ALICE, NET, { type: 'proposeMembership', action: 'Remove', account: BOB }],
        ]),
        callsBlock(9, [
          [ALICE, NET, { type: 'vote', proposal: 3, aye: true }],
          [CHARLIE, NET, { type: 'vote', proposal: 3, aye: true }],
        ]),
        callsBlock(11, []),
        callsBlock(12, [[CHARLIE, NET, uphold(0)]]),
      );
      expect(net(s).members).to.deep.equal([ALICE, CHARLIE]);
      expect(net(s).disputes[0]!.status).to.equal('open');
      const later = reduceBlocks(s, [callsBlock(13, [[ALICE, NET, uphold(0)]])]);
      expect(net(later).disputes[0]!.status).to.equal('upheld');
      expect(isBarredWorker(net(later), EVE)).to.equal(true);
    });

    it('bars at once in a network whose quorum is one member', () => {
      const solo: FedtuneCall = {
        ...create,
        members: [ALICE],
        quorum: { numerator: 1, denominator: 2 },
      } as FedtuneCall;
      const blocks = finalized();
      blocks[0] = callsBlock(1, [[ALICE, null, solo]]);
      blocks[2] = callsBlock(3, [
        [ALICE, NET, { type: 'vote', proposal: 0, aye: true }],
        [ALICE, NET, { type: 'vote', proposal: 1, aye: true }],
      ]);
      const s = reduceBlocks(initialState(), [
        ...blocks,
        callsBlock(8, [[ALICE, NET, dispute(FERDIE, { code: 'E_UPDATE_HASH' })]]),
      ]);
      expect(codes(s)).to.deep.equal([]);
      expect(net(s).barredWorkers[FERDIE]).to.deep.equal({ dispute: 0, code: 'E_UPDATE_HASH', block: 8 });
    });

    it('refuses a dispute against an account already barred in every role it played (E_ALREADY_BARRED)', () => {
      const s = run(
        callsBlock(8, [[BOB, NET, dispute(EVE)]]),
        callsBlock(9, [[CHARLIE, NET, uphold(0)]]),
        callsBlock(10, [[ALICE, NET, dispute(EVE, { code: 'E_UPDATE_HASH' })]]),
      );
      expect(codes(s)).to.deep.equal(['E_ALREADY_BARRED']);
      expect(net(s).disputes).to.have.length(1);
    });

    it('keeps the first bar when two open disputes against one worker are both upheld', () => {
      const s = run(
        callsBlock(8, [[DAVE, NET, finalize(1)]]),
        callsBlock(9, [
          [BOB, NET, dispute(EVE)],
          [CHARLIE, NET, dispute(EVE, { round: 1, code: 'E_UPDATE_HASH' })],
        ]),
        callsBlock(10, [[ALICE, NET, uphold(1)]]),
        callsBlock(11, [[ALICE, NET, uphold(0)]]),
      );
      expect(codes(s)).to.deep.equal([]);
      expect(net(s).disputes.map((d) => d.status)).to.deep.equal(['upheld', 'upheld']);
      expect(net(s).barredWorkers[EVE]).to.deep.equal({ dispute: 1, code: 'E_UPDATE_HASH', block: 10 });
    });

    it('refuses a finalizeRound naming a worker barred before the round started (E_CONTRIBUTOR_BARRED)', () => {
      // Barred at block 9, during round 1 (started at block 7, round 0's commit): round 1 may still count Eve, who
      // could have had its task before the bar; round 2 (started at block 10) may not.
      const s = run(
        callsBlock(8, [[BOB, NET, dispute(EVE)]]),
        callsBlock(9, [[CHARLIE, NET, uphold(0)]]),
        callsBlock(10, [[DAVE, NET, finalize(1)]]),
        callsBlock(11, [[DAVE, NET, finalize(2)]]),
      );
      expect(codes(s)).to.deep.equal(['E_CONTRIBUTOR_BARRED']);
      expect(round0(s).finalized.map((f) => f.round)).to.deep.equal([0, 1]);
      const without = reduceBlocks(s, [callsBlock(12, [[DAVE, NET, finalize(2, [FERDIE])]])]);
      expect(codes(without)).to.deep.equal(['E_CONTRIBUTOR_BARRED']);
      expect(round0(without).status).to.equal('completed');
    });

    it('bars a coordinator: its open rounds fail, and its openRound, finalizeRound and failRound are refused', () => {
      const s = run(
        callsBlock(8, [[BOB, NET, dispute(DAVE, { code: 'E_AGGREGATE_MISMATCH' })]]),
        callsBlock(9, [[ALICE, NET, uphold(0)]]),
      );
      expect(net(s).disputes[0]!.roles).to.deep.equal(['coordinator']);
      expect(net(s).barredCoordinators[DAVE]).to.deep.equal({
        dispute: 0,
        code: 'E_AGGREGATE_MISMATCH',
        block: 9,
      });
      expect(isBarredCoordinator(net(s), DAVE)).to.equal(true);
      expect(net(s).barredWorkers).to.deep.equal({});
      expect(round0(s).status).to.equal('failed');
      expect(round0(s).failure).to.deep.include({ block: 9, by: '' });
      expect(round0(s).failure!.reason).to.match(/^E_COORDINATOR_BARRED: /);
      const after = reduceBlocks(s, [
        callsBlock(10, [
          [DAVE, NET, { type: 'openRound', proposal: 1, coordinatorEndpoint: 'ws://x' }],
          [DAVE, NET, finalize(1)],
          [DAVE, NET, { type: 'failRound', proposal: 1, reason: 'spite' }],
          // Another coordinator is not affected.
          [ALICE, NET, { type: 'openRound', proposal: 1, coordinatorEndpoint: 'ws://y' }],
        ]),
      ]);
      expect(codes(after)).to.deep.equal([
        'E_COORDINATOR_BARRED',
        'E_COORDINATOR_BARRED',
        'E_COORDINATOR_BARRED',
      ]);
      expect((net(after).proposals[1] as RoundProposal).coordinator).to.equal(ALICE);
    });

    it('bars an accused that coordinated and contributed to the round in both roles', () => {
      const blocks = finalized();
      blocks[blocks.length - 1] = callsBlock(7, [[DAVE, NET, finalize(0, [EVE, DAVE])]]);
      const s = reduceBlocks(initialState(), [
        ...blocks,
        callsBlock(8, [[BOB, NET, dispute(DAVE)]]),
        callsBlock(9, [[ALICE, NET, uphold(0)]]),
      ]);
      expect(net(s).disputes[0]!.roles).to.deep.equal(['worker', 'coordinator']);
      expect(Object.keys(net(s).barredWorkers)).to.deep.equal([DAVE]);
      expect(Object.keys(net(s).barredCoordinators)).to.deep.equal([DAVE]);
    });
  });

  describe('snapshots', () => {
    it('keep disputes and bars, so a client resuming from one agrees with a full replay', () => {
      const s = run(
        callsBlock(8, [
          [BOB, NET, dispute(EVE)],
          [BOB, NET, dispute(FERDIE)],
        ]),
        callsBlock(9, [[CHARLIE, NET, uphold(0)]]),
      );
      const resumed = decodeSnapshot(encodeSnapshot(s)).state;
      expect(resumed).to.deep.equal(s);
      const next = callsBlock(10, [[CHARLIE, NET, uphold(1)]]);
      expect(reduceBlocks(resumed, [next])).to.deep.equal(reduceBlocks(s, [next]));
      expect(net(reduceBlocks(resumed, [next])).barredWorkers[FERDIE]!.dispute).to.equal(1);
    });

    it('refuse a snapshot of the older layout (no disputes): the client replays instead', () => {
      const s = run();
      const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
      const old = packr.pack({
        magic: 'fedtune-snapshot',
        version: 1,
        blockNumber: s.height,
        blockHash: s.blockHash,
        state: { ...s, layout: 1 },
      });
      expect(codeOf(() => decodeSnapshot(old))).to.equal('E_BAD_SNAPSHOT');
    });
  });
});
