// The DAO commands against a devnet: tables, --json, and coded errors, run in this process through main (as
// bin/fedtune.js runs them); `chain watch` runs as a real process, stopped with SIGINT.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { inProcess, startFedtune } from '../run-cli.ts';
import { startDevnet } from '../../devchain/index.ts';
import { ALICE, BOB, CHARLIE, DAVE } from './fixtures.ts';

describe('fedtune network / dao / worker / chain commands', function () {
  this.timeout(180_000);
  let devnet: { url: string; close(): Promise<void> };
  let env: NodeJS.ProcessEnv;

  before(async () => {
    devnet = await startDevnet({ port: 0, logger: pino({ level: 'silent' }), blockMode: 'instant' });
    env = { FEDTUNE_CHAIN: devnet.url };
  });

  after(async () => {
    await devnet?.close();
  });

  it('creates a network, proposes, votes, lists, and shows a rejected double vote in the audit', async () => {
    const created = await inProcess(
      [
        'network',
        'create',
        '--seed',
        '//Alice',
        '--name',
        'cli-dao',
        '--member',
        ALICE,
        '--member',
        BOB,
        '--member',
        CHARLIE,
        '--quorum',
        '2/3',
        '--voting-period',
        '20',
        '--json',
      ],
      env,
    );
    expect(created.status, created.stderr).to.equal(0);
    const { network } = JSON.parse(created.stdout) as { network: string };
    expect(network).to.match(/^0x[0-9a-f]{64}$/);
    const netEnv = { ...env, FEDTUNE_NETWORK: network };

    const shown = await inProcess(['network', 'show'], netEnv);
    expect(shown.status, shown.stderr).to.equal(0);
    expect(shown.stdout).to.contain('cli-dao').and.contain(BOB).and.contain('2/3 of members');

    const member = await inProcess(
      ['dao', 'propose-membership', '--seed', '//Bob', '--add', DAVE, '--json'],
      netEnv,
    );
    expect(member.status, member.stderr).to.equal(0);
    expect(JSON.parse(member.stdout)).to.include({ proposal: 0 });

    const aye = await inProcess(['dao', 'vote', '0', 'aye', '--seed', '//Alice'], netEnv);
    expect(aye.status, aye.stderr).to.equal(0);
    expect(aye.stdout).to.contain('1 aye / 0 nay');

    const again = await inProcess(['dao', 'vote', '0', 'nay', '--seed', '//Alice'], netEnv);
    expect(again.status).to.equal(1);
    expect(again.stderr).to.match(/error \[E_DOUBLE_VOTE\]/);

    // The old name stays as an alias.
    const outsider = await inProcess(['dao', 'propose-member', '--seed', '//Eve', '--add', DAVE], netEnv);
    expect(outsider.stderr).to.match(/error \[E_NOT_MEMBER\]/);

    const list = await inProcess(['dao', 'list'], netEnv);
    expect(list.status, list.stderr).to.equal(0);
    expect(list.stdout).to.match(/id\s+type\s+subject\s+status/);
    expect(list.stdout).to.match(/0\s+membership\s+add .*\s+voting\s+1\s+0\s+2/);

    const audit = await inProcess(['chain', 'audit', '--json'], netEnv);
    const rejected = (JSON.parse(audit.stdout) as { rejected: { code: string; signer: string }[] }).rejected;
    expect(rejected.map((r) => [r.code, r.signer])).to.deep.equal([
      ['E_DOUBLE_VOTE', ALICE],
      ['E_NOT_MEMBER', '5HGjWAeFDfFCWPsjFQdVV2Msvz2XtMktvgocEZcCj68kUMaw'],
    ]);
  });

  it('registers a worker under the worker command group while chain watch streams the changes and keeps a snapshot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedtune-watch-'));
    const snapshot = join(dir, 'state.msgpack');
    const watcher = startFedtune(
      ['chain', 'watch', '--json', '--snapshot', snapshot, '--snapshot-every', '1'],
      env,
    );
    try {
      let stdout = '';
      watcher.stdout.on('data', (d: Buffer) => (stdout += d));
      const exited = new Promise<number | null>((resolve) => watcher.on('close', resolve));
      const events = () =>
        stdout
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as { event: string; changes?: string[] });
      const waitFor = async (what: string, test: (e: ReturnType<typeof events>) => boolean) => {
        for (let i = 0; i < 900 && !test(events()); i++) await new Promise((r) => setTimeout(r, 100));
        expect(test(events()), `${what}; watch printed:\n${stdout}`).to.equal(true);
      };
      await waitFor('synced', (e) => e.some((x) => x.event === 'synced'));

      const created = await inProcess(
        ['network', 'create', '--seed', '//Bob', '--name', 'w', '--member', BOB, '--json'],
        env,
      );
      const { network } = JSON.parse(created.stdout) as { network: string };
      const reg = await inProcess(
        [
          'worker',
          'register',
          '--seed',
          '//Dave',
          '--network',
          network,
          '--backend',
          'cpu',
          '--memory',
          '2048',
        ],
        env,
      );
      expect(reg.status, reg.stderr).to.equal(0);
      const state = await inProcess(['chain', 'state', '--network', network, '--json'], env);
      const s = JSON.parse(state.stdout) as {
        networks: Record<string, { workers: Record<string, { capabilities: { memoryBytes: number } }> }>;
      };
      expect(s.networks[network]!.workers[DAVE]!.capabilities.memoryBytes).to.equal(2_048_000_000);

      await waitFor('network created', (e) =>
        e.some((x) => x.changes?.includes(`network ${network} "w" created`)),
      );
      await waitFor('worker registered', (e) =>
        e.some((x) => x.changes?.includes(`worker ${DAVE} registered (cpu, cpu)`)),
      );
      watcher.kill('SIGINT');
      expect(await exited).to.equal(0);
      expect(existsSync(snapshot)).to.equal(true);
    } finally {
      watcher.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad arguments with exit status 2 and an unreachable chain with E_CHAIN_UNREACHABLE', async () => {
    const bad = await inProcess(['dao', 'vote', '0', 'aye', '--seed', '//Alice', '--network', '0x12'], env);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/error \[E_USAGE\].*--network/);
    const noSigner = await inProcess(['network', 'create', '--name', 'x', '--member', ALICE], {
      ...env,
      FEDTUNE_SEED: '',
    });
    expect(noSigner.status).to.equal(2);
    expect(noSigner.stderr).to.match(/E_NO_SIGNER/);
    const down = await inProcess(['chain', 'state', '--chain', 'ws://127.0.0.1:1']);
    expect(down.status).to.equal(1);
    expect(down.stderr).to.match(/error \[E_CHAIN_UNREACHABLE\]/);
  });
});
