// Verification decides certification: a "no" attest carries its failure code, and a member's dispute, upheld by a
// quorum of members, bars the accused worker from further rounds or the accused coordinator from running any.
import { expect } from 'chai';
import {
  initialState,
  isBarredCoordinator,
  isBarredWorker,
  reduceBlocks,
  type FedtuneCall,
  type RoundProposal,
} from '../../pallet-bindings/index.ts';
import { ALICE, BOB, CHARLIE, DAVE, EVE, FERDIE, callsBlock } from './fixtures.ts';
import {
  EVIDENCE,
  NET,
  codes,
  create,
  dispute,
  finalize,
  finalized,
  net,
  round0,
  run,
  uphold,
} from './dispute-fixtures.ts';

describe('pallet-bindings disputes and coded attests', () => {
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
});
