// The dev accounts devchain/ writes out are what the keyring derives from their URIs.
import { expect } from 'chai';
import { u8aToHex } from '@polkadot/util';
import { DEV_ACCOUNT_NAMES, devAccounts } from '../../devchain/index.ts';
import { keyring } from './helpers.ts';

describe('devchain: the dev accounts', () => {
  it('are the sr25519 keys the keyring derives from //Alice … //Ferdie, with their SS58 (42) addresses', async () => {
    const ring = await keyring();
    const accounts = await devAccounts();
    expect(accounts.map((a) => a.name)).to.deep.equal([...DEV_ACCOUNT_NAMES]);
    for (const account of accounts) {
      const pair = ring.addFromUri(account.uri);
      expect(account.uri, account.name).to.equal(`//${account.name}`);
      expect(u8aToHex(account.publicKey), account.name).to.equal(u8aToHex(pair.publicKey));
      expect(account.address, account.name).to.equal(pair.address);
    }
  });
});
