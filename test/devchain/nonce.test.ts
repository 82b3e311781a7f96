// AccountNonceApi_account_nonce, which @polkadot/api calls before signing each transaction: the dev chain answers it at
// the head from storage (no runtime call), and the answer must be the runtime's own.
import { expect } from 'chai';
import { pino } from 'pino';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { startDevnet, type Devnet } from '../../devchain/index.ts';

describe('devchain AccountNonceApi from storage', function () {
  this.timeout(180_000);
  let devnet: Devnet;
  let api: ApiPromise;

  before(async () => {
    devnet = await startDevnet({ port: 0, logger: pino({ level: 'silent' }), blockMode: 'instant' });
    api = await ApiPromise.create({ provider: new WsProvider(devnet.url), noInitWarn: true });
  });

  after(async () => {
    await api?.disconnect();
    await devnet?.close();
  });

  it('gives the nonce in state at the head, 0 for an unknown account, and the runtime answer at an older block', async () => {
    await cryptoWaitReady();
    const keyring = new Keyring({ type: 'sr25519' });
    const alice = keyring.addFromUri('//Alice');
    const nobody = keyring.addFromUri('//nonce-test-nobody');
    const before = await api.rpc.chain.getBlockHash();
    for (let i = 0; i < 2; i++) {
      await new Promise<void>((resolve, reject) => {
        void api.tx.system
          .remark('0x00')
          .signAndSend(alice, { nonce: -1 }, (r) => {
            if (r.status.isFinalized) resolve();
            else if (r.status.isInvalid || r.status.isDropped) reject(new Error(r.status.type));
          })
          .catch(reject);
      });
    }
    const inState = ((await api.query.system.account(alice.address)).toJSON() as { nonce: number }).nonce;
    expect(inState).to.equal(2);
    expect(Number((await api.call.accountNonceApi.accountNonce(alice.address)).toString())).to.equal(inState);
    expect(Number((await api.call.accountNonceApi.accountNonce(nobody.address)).toString())).to.equal(0);
    const atOld = await api.at(before);
    expect(Number((await atOld.call.accountNonceApi.accountNonce(alice.address)).toString())).to.equal(0);
  });
});
