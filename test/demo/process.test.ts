// The demo's one-shot commands in its own process: results captured per command, side by side, without touching
// process.env; a failing command is an E_DEMO_STEP with its words and its last stderr lines.
import { expect } from 'chai';
import { main } from '../../cli/index.ts';
import { DemoError, fedtune, quietNormalClosures, runInProcess } from '../../demo/process.ts';

describe('demo: one-shot commands in the demo process', function () {
  this.timeout(60_000);

  it('runs two commands at once, each with its own output, and leaves process.env as it was', async () => {
    const before = { ...process.env };
    const [moby, sotu] = await Promise.all([
      fedtune(['dataset', 'shard', 'moby-dick', '--scheme', 'iid', '--shards', '2', '--json']),
      fedtune(['dataset', 'shard', 'sotu', '--scheme', 'partition', '--json']),
    ]);
    const m = JSON.parse(moby) as { root: string; shards: unknown[] };
    const s = JSON.parse(sotu) as { root: string; shards: unknown[] };
    expect(m.shards).to.have.length(2);
    expect(s.shards.length).to.be.greaterThan(2);
    expect(m.root)
      .to.match(/^0x[0-9a-f]{64}$/)
      .and.not.equal(s.root);
    expect(process.env).to.deep.equal(before);
  });

  it('answers a failing command with its status and what it wrote to stderr', async () => {
    const result = await runInProcess(['dataset', 'shard', 'no-such-corpus', '--json']);
    expect(result.status).to.equal(2);
    expect(result.stdout).to.equal('');
    expect(result.stderr).to.match(/^error \[E_DATASET_NOT_FOUND\]: no-such-corpus/);
  });

  it('turns a failing command into E_DEMO_STEP with its words, not the flags it was given', async () => {
    const failed = await fedtune(
      ['dataset', 'shard', 'no-such-corpus'],
      ['--chain', 'ws://127.0.0.1:1'],
    ).then(
      () => null,
      (error: unknown) => error,
    );
    expect(failed).to.be.instanceOf(DemoError);
    expect((failed as DemoError).code).to.equal('E_DEMO_STEP');
    // `dataset shard` takes no --chain: the usage error is the command's own last line.
    expect((failed as DemoError).message).to.equal(
      '`fedtune dataset shard no-such-corpus` exited 2: error [E_USAGE]: Unknown argument: chain | Run with --help for usage.',
    );
  });

  it("sends a command's logs to io.logs where main's caller gives one (the demo: into the captured stderr)", async () => {
    const out = { stdout: '', stderr: '', logs: '' };
    const status = await main(
      ['dataset', 'shard', 'moby-dick', '--scheme', 'iid', '--shards', '2', '--log-level', 'info', '--json'],
      {
        stdout: (t) => void (out.stdout += t),
        stderr: (t) => void (out.stderr += t),
        logs: (t) => void (out.logs += t),
      },
    );
    expect(status).to.equal(0);
    expect(out.stderr).to.equal('');
    const lines = out.logs
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; level: number });
    expect(lines.map((l) => l.msg)).to.include('built manifest');
    expect(JSON.parse(out.stdout)).to.have.property('root');
  });

  it("keeps @polkadot/api's normal-closure notice off the console while the demo runs, and nothing else", () => {
    const seen: unknown[][] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void seen.push(args);
    try {
      const loud = quietNormalClosures();
      console.error(
        '2026-12-03 05:07:55',
        'RPC-CORE:',
        'subscribeRuntimeVersion(): RuntimeVersion:: disconnected from ws://127.0.0.1:44079: 1000:: Normal Closure',
      );
      console.error('API-WS:', 'disconnected from ws://127.0.0.1:44079: 1006:: Abnormal Closure');
      loud();
      console.error('after', 'disconnected from ws://127.0.0.1:1: 1000:: Normal Closure');
    } finally {
      console.error = original;
    }
    expect(seen).to.deep.equal([
      ['API-WS:', 'disconnected from ws://127.0.0.1:44079: 1006:: Abnormal Closure'],
      ['after', 'disconnected from ws://127.0.0.1:1: 1000:: Normal Closure'],
    ]);
  });
});
