// Signing keys from seeds and keystores, with coded errors that never echo a secret.
import { expect } from 'chai';
import { Keyring } from '@polkadot/keyring';
import { u8aToHex } from '@polkadot/util';
import { cryptoWaitReady, mnemonicGenerate, signatureVerify } from '@polkadot/util-crypto';
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

  it("gives the keyring's own keys for every kind of secret URI, and signatures that verify", async () => {
    await cryptoWaitReady();
    const mnemonic = mnemonicGenerate();
    const uris = [
      '//Alice',
      '//Bob//stash',
      '//bench-worker-7',
      mnemonic,
      `${mnemonic}//hard/soft//0`,
      `${mnemonic}///password`,
      `${mnemonic}/soft///password`,
      `0x${'ab'.repeat(32)}//x`,
      'a short raw seed',
      'raw//derived',
    ];
    for (const uri of uris) {
      const ours = await signerFromSeed(uri);
      const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 }).addFromUri(uri);
      expect(ours.address, uri).to.equal(keyring.address);
      expect(u8aToHex(ours.publicKey), uri).to.equal(u8aToHex(keyring.publicKey));
      // The secret key as stored: after the 16-byte PKCS8 header, the 32-byte key and the 32-byte nonce. A soft
      // junction draws its nonce at random (schnorrkel and @scure/sr25519 alike), so only the key is compared there.
      const [a, b] = [ours.encodePkcs8(), keyring.encodePkcs8()];
      const soft = /[^/]\/[^/]/.test(uri.replace(/^\/\//, ''));
      expect(u8aToHex(a.subarray(0, 48)), uri).to.equal(u8aToHex(b.subarray(0, 48)));
      expect(u8aToHex(a.subarray(80)), uri).to.equal(u8aToHex(b.subarray(80)));
      if (!soft) expect(u8aToHex(a), uri).to.equal(u8aToHex(b));
      const message = new TextEncoder().encode(`payload for ${uri}`);
      const plain = ours.sign(message);
      expect(plain.length).to.equal(64);
      expect(signatureVerify(message, plain, ours.address)).to.include({ isValid: true, crypto: 'sr25519' });
      const typed = ours.sign(message, { withType: true });
      expect(typed.length).to.equal(65);
      expect(typed[0]).to.equal(1);
      expect(signatureVerify(message, typed, keyring.address).isValid).to.equal(true);
      expect(keyring.verify(message, plain, ours.publicKey)).to.equal(true);
      expect(signatureVerify(new TextEncoder().encode('another'), plain, ours.address).isValid).to.equal(
        false,
      );
    }
  });

  it('refuses to sign once locked', async () => {
    const pair = await signerFromSeed('//Alice');
    pair.lock();
    expect(() => pair.sign(new Uint8Array([1]))).to.throw('locked');
  });

  it('refuses a bad seed without repeating it', async () => {
    const error = await codeOf(signerFromSeed('secret words that are not a mnemonic'));
    expect(error.code).to.equal('E_BAD_SEED');
    expect(error.message).to.not.contain('secret');
    const words = 'bottom drive obey lake curtain smoke basket hold race lonely fit fit';
    expect((await codeOf(signerFromSeed(words))).code).to.equal('E_BAD_SEED');
    expect((await codeOf(signerFromSeed('//Alice/'))).code).to.equal('E_BAD_SEED');
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
