// The dev chain through stock @polkadot/api only: balances, fees, events, batches, refusals, nonces, blocks.
import { expect } from 'chai';
import type { ApiPromise } from '@polkadot/api';
import type { KeyringPair } from '@polkadot/keyring/types';
import { blake2AsHex, encodeAddress } from '@polkadot/util-crypto';
import { u8aToHex, stringToHex } from '@polkadot/util';
import { startDevnet, DEV_BALANCE, type Devnet } from '../../devchain/index.ts';
import { connect, feeOf, free, logger, names, pair, rejection, sameAccount, send } from './helpers.ts';

describe('devchain: the runtime through @polkadot/api (instant mode)', function () {
  this.timeout(120_000);
  let devnet: Devnet;
  let api: ApiPromise;
  let alice: KeyringPair, bob: KeyringPair, charlie: KeyringPair, dave: KeyringPair, eve: KeyringPair;

  before(async () => {
    devnet = await startDevnet({ port: 0, logger });
    api = await connect(devnet.url);
    [alice, bob, charlie, dave, eve] = await Promise.all(
      ['//Alice', '//Bob', '//Charlie', '//Dave', '//Eve'].map(pair),
    );
  });
  after(async () => {
    await api?.disconnect();
    await devnet?.close();
  });

  it('is the Rococo Asset Hub runtime with a genesis hash that the node reports', async () => {
    expect(api.runtimeVersion.specName.toString()).to.equal('statemine');
    expect(api.runtimeVersion.specVersion.toNumber()).to.equal(900);
    expect(devnet.chainName).to.equal((await api.rpc.system.chain()).toString());
    expect(api.genesisHash.toHex()).to.equal(devnet.genesisHash);
    expect((await api.rpc.chain.getBlockHash(0)).toHex()).to.equal(devnet.genesisHash);
    const block1 = await api.rpc.chain.getHeader(await api.rpc.chain.getBlockHash(1));
    expect(block1.parentHash.toHex()).to.equal(devnet.genesisHash);
    expect(devnet.genesisHash)
      .to.match(/^0x[0-9a-f]{64}$/)
      .and.not.match(/^0x(45)+$/);
  });

  it('lists the funded dev accounts in system.account.entries()', async () => {
    const entries = await api.query.system.account.entries();
    const byAddress = new Map(
      entries.map(([key, info]) => [
        encodeAddress(key.args[0]!.toString(), 42),
        (info as unknown as { data: { free: { toBigInt(): bigint } } }).data.free.toBigInt(),
      ]),
    );
    expect(devnet.accounts.map((a) => a.name)).to.deep.equal([
      'Alice',
      'Bob',
      'Charlie',
      'Dave',
      'Eve',
      'Ferdie',
    ]);
    for (const account of devnet.accounts) {
      expect(byAddress.has(account.address), account.name).to.equal(true);
      expect(byAddress.get(account.address)! > 0n, account.name).to.equal(true);
    }
    expect(devnet.accounts[0]!.address).to.equal('5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY');
    expect(await free(api, devnet.accounts[5]!.address)).to.equal(DEV_BALANCE);
  });

  it('moves exactly the transferred amount and charges a real fee', async () => {
    const amount = 1_234_567_890_123n;
    const [aliceBefore, bobBefore] = await Promise.all([free(api, alice.address), free(api, bob.address)]);
    const landed = await send(api, api.tx.balances.transfer(bob.address, amount), alice);
    expect(names(landed.events)).to.include.members(['balances.Transfer', 'system.ExtrinsicSuccess']);
    const fee = feeOf(landed.events, alice.address);
    expect(fee > 0n).to.equal(true);
    const [aliceAfter, bobAfter] = await Promise.all([free(api, alice.address), free(api, bob.address)]);
    expect(bobAfter - bobBefore).to.equal(amount);
    expect(aliceBefore - aliceAfter).to.equal(amount + fee);
    // The runtime's own fee query for this extrinsic, on the state it was applied to, names the same fee (the fee
    // multiplier moves every block, so only the parent's state gives the exact figure).
    const { block } = await api.rpc.chain.getBlock(landed.blockHash);
    const extrinsic = block.extrinsics[landed.index]!;
    const atParent = await api.at(block.header.parentHash);
    const info = (await atParent.call.transactionPaymentApi.queryInfo(
      extrinsic,
      extrinsic.encodedLength,
    )) as unknown as { partialFee: { toBigInt(): bigint } };
    expect(info.partialFee.toBigInt()).to.equal(fee);
  });

  it('emits System.Remarked for remark_with_event, and the block is final when built', async () => {
    const remark = stringToHex('fedtune devchain test');
    const landed = await send(api, api.tx.system.remarkWithEvent(remark), alice);
    expect(landed.finalized).to.equal(true);
    const remarked = landed.events.find((e) => e.event.section === 'system' && e.event.method === 'Remarked');
    expect(remarked, names(landed.events).join(', ')).to.not.equal(undefined);
    expect(sameAccount(remarked!.event.data[0]!.toString(), alice.address)).to.equal(true);
    expect(remarked!.event.data[1]!.toHex()).to.equal(blake2AsHex(remark, 256));
    expect((await api.rpc.chain.getFinalizedHead()).toHex()).to.equal(
      (await api.rpc.chain.getBlockHash()).toHex(),
    );
  });

  it('decodes the submitted extrinsic from chain.getBlock', async () => {
    const remark = stringToHex('decode me');
    const landed = await send(api, api.tx.system.remarkWithEvent(remark), charlie);
    const { block } = await api.rpc.chain.getBlock(landed.blockHash);
    const extrinsic = block.extrinsics[landed.index]!;
    expect(extrinsic.isSigned).to.equal(true);
    expect(sameAccount(extrinsic.signer.toString(), charlie.address)).to.equal(true);
    expect(`${extrinsic.method.section}.${extrinsic.method.method}`).to.equal('system.remarkWithEvent');
    expect(extrinsic.method.args[0]!.toHex()).to.equal(remark);
    // The inherents come first, as on any parachain block.
    expect(block.extrinsics[0]!.isSigned).to.equal(false);
  });

  it('a utility.batchAll whose second call fails changes nothing but the fee', async () => {
    const [charlieBefore, bobBefore] = await Promise.all([
      free(api, charlie.address),
      free(api, bob.address),
    ]);
    const batch = api.tx.utility.batchAll([
      api.tx.system.remarkWithEvent(stringToHex('never happens')),
      api.tx.balances.transferKeepAlive(bob.address, charlieBefore * 2n),
    ]);
    const landed = await send(api, batch, charlie);
    const eventNames = names(landed.events);
    expect(eventNames).to.include('system.ExtrinsicFailed');
    expect(eventNames).to.not.include('system.Remarked');
    expect(eventNames).to.not.include('balances.Transfer');
    const fee = feeOf(landed.events, charlie.address);
    expect(fee > 0n).to.equal(true);
    const [charlieAfter, bobAfter] = await Promise.all([free(api, charlie.address), free(api, bob.address)]);
    expect(bobAfter).to.equal(bobBefore);
    expect(charlieBefore - charlieAfter).to.equal(fee);
  });

  it('refuses a forged signature with 1010', async () => {
    const tx = api.tx.system.remark(stringToHex('forged'));
    await tx.signAsync(eve, { nonce: -1 });
    const bytes = tx.toU8a();
    // Flip a bit of the 64-byte sr25519 signature (it follows the signer's MultiAddress and the signature type byte).
    const at = u8aToHex(bytes).indexOf(tx.signature.toHex().slice(2)) / 2 - 1;
    bytes[at + 10] ^= 0x01;
    const error = await rejection(api.rpc.author.submitExtrinsic(u8aToHex(bytes)));
    expect(error.message).to.match(/1010/);
    expect(error.message).to.match(/BadProof|bad signature/i);
  });

  it('refuses a stale nonce with 1010', async () => {
    await send(api, api.tx.system.remark(stringToHex('use nonce')), eve);
    const stale = api.tx.system.remark(stringToHex('stale'));
    await stale.signAsync(eve, { nonce: 0 });
    const error = await rejection(api.rpc.author.submitExtrinsic(stale.toHex()));
    expect(error.message).to.match(/1010/);
    expect(error.message).to.match(/stale/i);
  });

  it('refuses a transaction from an account with no funds', async () => {
    const pauper = await pair('//fedtune-devchain-test-pauper');
    expect(await free(api, pauper.address)).to.equal(0n);
    const tx = api.tx.system.remark(stringToHex('cannot pay'));
    await tx.signAsync(pauper, { nonce: 0 });
    const error = await rejection(api.rpc.author.submitExtrinsic(tx.toHex()));
    expect(error.message).to.match(/1010/);
    expect(error.message).to.match(/pay/i);
  });

  it('lands transactions with consecutive nonces submitted at the same moment, in nonce order', async () => {
    const first = (await api.rpc.system.accountNextIndex(dave.address)).toNumber();
    const nonces = [first + 2, first, first + 3, first + 1];
    const landed = await Promise.all(
      nonces.map((nonce) =>
        send(api, api.tx.system.remarkWithEvent(stringToHex(`n${nonce}`)), dave, { nonce }),
      ),
    );
    const byNonce = nonces
      .map((nonce, i) => ({ nonce, at: landed[i]! }))
      .sort((a, b) => a.nonce - b.nonce)
      .map(({ at }) => [at.blockNumber, at.index] as const);
    for (const at of landed) expect(names(at.events)).to.include('system.ExtrinsicSuccess');
    for (let i = 1; i < byNonce.length; i++) {
      const [prev, cur] = [byNonce[i - 1]!, byNonce[i]!];
      expect(cur[0] > prev[0] || (cur[0] === prev[0] && cur[1] > prev[1]), JSON.stringify(byNonce)).to.equal(
        true,
      );
    }
    expect((await api.rpc.system.accountNextIndex(dave.address)).toNumber()).to.equal(first + 4);
  });
});
