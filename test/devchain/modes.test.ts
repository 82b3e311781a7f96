// Block modes and the pool as @polkadot/api sees them: manual blocks, batches, system_accountNextIndex, future nonces.
import { expect } from 'chai';
import type { ApiPromise } from '@polkadot/api';
import type { KeyringPair } from '@polkadot/keyring/types';
import { stringToHex } from '@polkadot/util';
import { startDevnet, type Devnet } from '../../devchain/index.ts';
import { connect, logger, names, pair, send } from './helpers.ts';

const head = async (api: ApiPromise) => (await api.rpc.chain.getHeader()).number.toNumber();
const nextIndex = async (api: ApiPromise, address: string) =>
  (await api.rpc.system.accountNextIndex(address)).toNumber();

/** Signs and submits without waiting for a block; resolves with the transaction hash once the pool took it. */
async function submit(api: ApiPromise, signer: KeyringPair, text: string, nonce: number): Promise<string> {
  const tx = api.tx.system.remarkWithEvent(stringToHex(text));
  await tx.signAsync(signer, { nonce });
  return (await api.rpc.author.submitExtrinsic(tx.toHex())).toHex();
}

describe('devchain: manual block mode', function () {
  this.timeout(120_000);
  let devnet: Devnet;
  let api: ApiPromise;
  let alice: KeyringPair;

  before(async () => {
    devnet = await startDevnet({ port: 0, logger, blockMode: 'manual' });
    api = await connect(devnet.url);
    alice = await pair('//Alice');
  });
  after(async () => {
    await api?.disconnect();
    await devnet?.close();
  });

  it('builds nothing until asked, counts pending transactions in system_accountNextIndex, then lands them in order', async () => {
    const start = await head(api);
    const n = await nextIndex(api, alice.address);
    await submit(api, alice, 'first', n);
    expect(await nextIndex(api, alice.address)).to.equal(n + 1);
    await submit(api, alice, 'second', n + 1);
    expect(await nextIndex(api, alice.address)).to.equal(n + 2);
    expect(await head(api)).to.equal(start);

    const built = await devnet.newBlock();
    expect(built.number).to.equal(start + 1);
    const { block } = await api.rpc.chain.getBlock(built.hash);
    const remarks = block.extrinsics
      .filter((x) => x.isSigned)
      .map((x) => [x.nonce.toNumber(), x.method.args[0]!.toHex()]);
    expect(remarks).to.deep.equal([
      [n, stringToHex('first')],
      [n + 1, stringToHex('second')],
    ]);
    expect(await nextIndex(api, alice.address)).to.equal(n + 2);
    expect((await api.rpc.chain.getFinalizedHead()).toHex()).to.equal(built.hash);
  });

  it('keeps a future-nonce transaction out of the count and the block until the gap is filled', async () => {
    const n = await nextIndex(api, alice.address);
    await submit(api, alice, 'later', n + 1);
    // A node does not count a transaction after a gap.
    expect(await nextIndex(api, alice.address)).to.equal(n);
    const gap = await devnet.newBlock();
    const { block: gapBlock } = await api.rpc.chain.getBlock(gap.hash);
    expect(gapBlock.extrinsics.filter((x) => x.isSigned)).to.have.length(0);

    await submit(api, alice, 'now', n);
    expect(await nextIndex(api, alice.address)).to.equal(n + 2);
    // dev_newBlock over RPC, as any chopsticks client would ask.
    const hash = (await api.rpc('dev_newBlock' as never)) as unknown as string;
    const { block } = await api.rpc.chain.getBlock(hash);
    expect(block.extrinsics.filter((x) => x.isSigned).map((x) => x.nonce.toNumber())).to.deep.equal([
      n,
      n + 1,
    ]);
  });
});

describe('devchain: batch block mode', function () {
  this.timeout(120_000);
  let devnet: Devnet;
  let api: ApiPromise;

  before(async () => {
    devnet = await startDevnet({ port: 0, logger, blockMode: 'batch', blockTime: 1500 });
    api = await connect(devnet.url);
  });
  after(async () => {
    await api?.disconnect();
    await devnet?.close();
  });

  it('puts transactions that arrive within the block time into one block', async () => {
    const signers = await Promise.all(['//Bob', '//Charlie', '//Dave'].map(pair));
    const landed = await Promise.all(
      signers.map((signer) => send(api, api.tx.system.remarkWithEvent(stringToHex('batched')), signer)),
    );
    expect(new Set(landed.map((l) => l.blockHash)).size).to.equal(1);
    for (const l of landed) expect(names(l.events)).to.include('system.Remarked');
  });

  it('builds no empty blocks while the pool is empty', async () => {
    const before = await head(api);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await head(api)).to.equal(before);
  });
});
