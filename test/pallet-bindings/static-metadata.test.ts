// The calls a real chain would see: built and encoded against the static Polkadot and Kusama metadata in @polkadot/types-support.
import { expect } from 'chai';
import { Metadata, TypeRegistry } from '@polkadot/types';
import { expandMetadata } from '@polkadot/types/metadata';
import type { Call } from '@polkadot/types/interfaces';
import polkadotMetadata from '@polkadot/types-support/metadata/static-polkadot';
import kusamaMetadata from '@polkadot/types-support/metadata/static-kusama';
import { buildCall, decodePayload, encodePayload, type CallBuilders } from '../../pallet-bindings/index.ts';
import { ALICE, BOB, EVE, createCall, hex32 } from './fixtures.ts';

for (const [chain, hex] of [
  ['Polkadot', polkadotMetadata],
  ['Kusama', kusamaMetadata],
] as const) {
  describe(`pallet-bindings calls against static ${chain} metadata`, () => {
    const registry = new TypeRegistry();
    const metadata = new Metadata(registry, hex);
    registry.setMetadata(metadata);
    const tx = expandMetadata(registry, metadata).tx as unknown as CallBuilders<Call>;

    it('encodes a lone protocol call as system.remarkWithEvent and reads it back', () => {
      const payload = encodePayload({ network: null, call: createCall() });
      const call = buildCall(tx, [payload]);
      const decoded = registry.createType('Call', call.toU8a());
      expect(`${decoded.section}.${decoded.method}`).to.equal('system.remarkWithEvent');
      expect(decodePayload(decoded.args[0]!.toU8a(true)).call).to.deep.equal(createCall());
      // An unsigned extrinsic around it round-trips through the chain's own codec.
      const extrinsic = registry.createType('Extrinsic', call);
      expect(registry.createType('Extrinsic', extrinsic.toU8a()).method.toHex()).to.equal(call.toHex());
    });

    it('batches a finalizeRound with transferKeepAlive rewards in one utility.batchAll', () => {
      const payload = encodePayload({
        network: hex32(1),
        call: { type: 'failRound', proposal: 3, reason: 'no workers' },
      });
      const call = buildCall(
        tx,
        [payload],
        [
          { dest: BOB, value: '1500000000000' },
          { dest: EVE, value: 7n },
        ],
      );
      const decoded = registry.createType('Call', call.toU8a());
      expect(`${decoded.section}.${decoded.method}`).to.equal('utility.batchAll');
      const inner = decoded.args[0] as unknown as Call[];
      expect(inner.map((c) => `${c.section}.${c.method}`)).to.deep.equal([
        'system.remarkWithEvent',
        'balances.transferKeepAlive',
        'balances.transferKeepAlive',
      ]);
      expect(decodePayload(inner[0]!.args[0]!.toU8a(true)).call).to.include({
        type: 'failRound',
        proposal: 3,
      });
      expect(inner[1]!.args[1]!.toString()).to.equal('1500000000000');
      expect(inner[2]!.args[1]!.toString()).to.equal('7');
      const dest = registry.createType('AccountId32', inner[1]!.args[0]!.toU8a().subarray(1));
      expect(registry.createType('AccountId32', BOB).eq(dest)).to.equal(true);
      expect(registry.createType('AccountId32', ALICE).eq(dest)).to.equal(false);
    });
  });
}
