// Disputes on the wire and in snapshots: the coded attest (attestWithCode), dispute and upholdDispute round-trip through
// the SCALE codec, attesters keep their codes, and snapshots keep disputes and bars.
import { expect } from 'chai';
import { u8aToHex } from '@polkadot/util';
import { Packr } from 'msgpackr';
import {
  CALL_TYPES,
  decodePayload,
  decodeSnapshot,
  encodePayload,
  encodeSnapshot,
  isFailureCode,
  reduceBlocks,
  type FedtuneCall,
} from '../../pallet-bindings/index.ts';
import { ALICE, BOB, CHARLIE, EVE, FERDIE, callsBlock, hex32 } from './fixtures.ts';
import { CKPT0, NET, codeOf, codes, dispute, net, run, uphold } from './dispute-fixtures.ts';

describe('pallet-bindings disputes and coded attests: codec and snapshots', () => {
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
