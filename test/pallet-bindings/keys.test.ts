// Signing keys from seeds and keystores, with coded errors that never echo a secret.
import { expect } from 'chai';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady, mnemonicGenerate } from '@polkadot/util-crypto';
import { signerFromKeyfile, signerFromSeed, type PalletError } from '../../pallet-bindings/index.ts';
import { ALICE } from './fixtures.ts';

async function codeOf(p: Promise<unknown>): Promise<PalletError> {
  try {
    await p;
  } catch (error) {
    return error as PalletError;
  }
  throw new Error('expected a rejection');
}

describe('pallet-bindings keys', () => {
  it('derives dev accounts and mnemonics', async () => {
    expect((await signerFromSeed('//Alice')).address).to.equal(ALICE);
    const mnemonic = mnemonicGenerate();
    const a = await signerFromSeed(mnemonic);
    expect(a.address).to.equal((await signerFromSeed(mnemonic)).address);
  });

  it('refuses a bad seed without repeating it', async () => {
    const error = await codeOf(signerFromSeed('secret words that are not a mnemonic'));
    expect(error.code).to.equal('E_BAD_SEED');
    expect(error.message).to.not.contain('secret');
  });

  it('unlocks a polkadot.js keystore with its password, and only with it', async () => {
    await cryptoWaitReady();
    const pair = new Keyring({ type: 'sr25519' }).addFromUri(mnemonicGenerate());
    const json = JSON.stringify(pair.toJson('hunter2'));
    const unlocked = await signerFromKeyfile(json, 'hunter2');
    expect(unlocked.address).to.equal(pair.address);
    expect(unlocked.isLocked).to.equal(false);
    const wrong = await codeOf(signerFromKeyfile(json, 'hunter3'));
    expect(wrong.code).to.equal('E_BAD_PASSWORD');
    expect(wrong.message).to.not.contain('hunter');
    expect((await codeOf(signerFromKeyfile('{nope', 'x'))).code).to.equal('E_BAD_KEYFILE');
  });
});
