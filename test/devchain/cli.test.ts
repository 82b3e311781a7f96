// `fedtune devnet`: its arguments (in this process), and as a child process a taken port, an unreachable fork, and a
// restart on the same data dir after kill -9.
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApiPromise } from '@polkadot/api';
import { stringToHex } from '@polkadot/util';
import { inProcess, startFedtune } from '../run-cli.ts';
import { connect, free, pair, send } from './helpers.ts';

interface Ready {
  url: string;
  chain: string;
  genesisHash: string;
  head: number;
  resumed: boolean;
  dataDir: string | null;
  accounts: { name: string; uri: string; address: string }[];
}

/** Starts `fedtune devnet --json` and resolves with its ready line. */
function startChild(args: string[]): Promise<{ child: ChildProcess; ready: Ready }> {
  const child = startFedtune(['devnet', '--json', '--port', '0', '--log-level', 'warn', ...args]);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve({ child, ready: JSON.parse(line) as Ready });
    });
    child.once('exit', (code) => reject(new Error(`fedtune devnet exited with ${code}: ${err}`)));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

describe('devchain: fedtune devnet (CLI)', function () {
  this.timeout(120_000);
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  let api: ApiPromise | undefined;
  let server: Server | undefined;

  afterEach(async () => {
    await api?.disconnect();
    api = undefined;
    for (const child of children.splice(0)) {
      child.kill('SIGKILL');
      await exited(child);
    }
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('prints its options with --help', async () => {
    const result = await inProcess(['devnet', '--help']);
    expect(result.status).to.equal(0);
    for (const option of [
      '--port',
      '--host',
      '--data-dir',
      '--tmp',
      '--block-mode',
      '--block-time',
      '--block-interval',
      '--fork',
    ])
      expect(result.stdout).to.include(option);
  });

  it('exits 2 on a bad argument', async () => {
    const result = await inProcess(['devnet', '--tmp', '--block-mode', 'sometimes']);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.include('E_USAGE');
    expect(result.stderr).to.include('sometimes');
    expect((await inProcess(['devnet', '--tmp', '--data-dir', 'x'])).status).to.equal(2);
    expect((await inProcess(['devnet', '--tmp', '--block-time', '100'])).status).to.equal(2);
  });

  it('says the port is taken, with a code', async () => {
    server = createServer();
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const result = await inProcess(['devnet', '--tmp', '--port', String(port)]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.include('E_DEVNET_PORT_IN_USE');
    expect(result.stderr).to.include(String(port));
  });

  it('says a --fork URL that nothing answers is unreachable, with a code', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const result = await inProcess(['devnet', '--tmp', '--port', '0', '--fork', `ws://127.0.0.1:${port}`]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.include('E_DEVNET_FORK_UNREACHABLE');
  });

  it('lists the dev accounts when ready and stops cleanly on SIGTERM', async () => {
    const { child, ready } = await startChild(['--tmp']);
    children.push(child);
    expect(ready.dataDir).to.equal(null);
    expect(ready.accounts.map((a) => a.uri)).to.deep.equal([
      '//Alice',
      '//Bob',
      '//Charlie',
      '//Dave',
      '//Eve',
      '//Ferdie',
    ]);
    child.kill('SIGTERM');
    await exited(child);
    expect(child.exitCode).to.equal(0);
  });

  it('resumes after kill -9 on the same data dir with the same blocks and balances', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fedtune-devchain-test-'));
    dirs.push(dataDir);
    const [alice, bob] = await Promise.all([pair('//Alice'), pair('//Bob')]);

    // No blocks on an interval: the test counts blocks across the restart.
    const first = await startChild(['--data-dir', dataDir, '--block-interval', '0']);
    children.push(first.child);
    expect(first.ready.resumed).to.equal(false);
    api = await connect(first.ready.url);
    await send(api, api.tx.balances.transferKeepAlive(bob.address, 5_000_000_000_000n), alice);
    await send(api, api.tx.system.remarkWithEvent(stringToHex('before the crash')), bob);
    const head = (await api.rpc.chain.getHeader()).number.toNumber();
    const hashes: string[] = [];
    for (let n = 0; n <= head; n++) hashes.push((await api.rpc.chain.getBlockHash(n)).toHex());
    const balances = await Promise.all([free(api, alice.address), free(api, bob.address)]);
    const nonce = (await api.rpc.system.accountNextIndex(alice.address)).toNumber();
    // Blocks are being built and written when the process dies: Charlie's remarks are in flight.
    const charlie = await pair('//Charlie');
    const inFlight = [0, 1, 2].map((i) =>
      send(api!, api!.tx.system.remark(stringToHex(`in flight ${i}`)), charlie).catch(() => undefined),
    );
    await new Promise((resolve) => setTimeout(resolve, 400));
    first.child.kill('SIGKILL');
    await api.disconnect();
    api = undefined;
    void Promise.all(inFlight);
    await exited(first.child);

    const second = await startChild(['--data-dir', dataDir, '--block-interval', '0']);
    children.push(second.child);
    expect(second.ready.resumed).to.equal(true);
    expect(second.ready.head).to.be.at.least(head);
    const resumedHead = second.ready.head;
    expect(second.ready.genesisHash).to.equal(first.ready.genesisHash);
    api = await connect(second.ready.url);
    expect((await api.rpc.chain.getHeader()).number.toNumber()).to.equal(resumedHead);
    for (let n = 0; n <= head; n++)
      expect((await api.rpc.chain.getBlockHash(n)).toHex(), `#${n}`).to.equal(hashes[n]);
    expect(await Promise.all([free(api, alice.address), free(api, bob.address)])).to.deep.equal(balances);
    expect((await api.rpc.system.accountNextIndex(alice.address)).toNumber()).to.equal(nonce);
    // The resumed chain goes on from its head.
    const landed = await send(api, api.tx.system.remark(stringToHex('after the crash')), alice);
    expect(landed.blockNumber).to.equal(resumedHead + 1);
    const header = await api.rpc.chain.getHeader(landed.blockHash);
    expect(header.parentHash.toHex()).to.equal((await api.rpc.chain.getBlockHash(resumedHead)).toHex());
  });
});
