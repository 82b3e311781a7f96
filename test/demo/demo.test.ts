// `fedtune demo` at its smallest size, as CI runs it: it exits 0, writes a complete summary.json, and the chain it
// leaves behind, restarted with `startDevnet`, holds every checkpoint of the summary in a finalized finalizeRound.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { startDevnet } from '../../devchain/index.ts';
import { connect, initialState, syncState, type RoundProposal } from '../../pallet-bindings/index.ts';
import { runFedtune } from '../../bin/index.ts';
import { exploreDemo, type DemoSummary } from '../../demo/index.ts';

const logger = pino({ level: 'silent' });

const runDemo = (args: string[]) => runFedtune(['demo', ...args], {}, { timeoutMs: 540_000 });

describe('fedtune demo (smallest size)', function () {
  this.timeout(600_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedtune-demo-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs pre-training and fine-tuning to certified checkpoints, and leaves a chain that proves them', async () => {
    const out = join(dir, 'out');
    const result = await runDemo([
      '--workers',
      '2',
      '--rounds',
      '2',
      '--finetune-rounds',
      '1',
      '--local-steps',
      '10',
      '--eval-examples',
      '128',
      '--out',
      out,
      '--json',
    ]);
    expect(result.status, result.stderr.slice(-3000)).to.equal(0);
    expect(result.stderr).to.match(/summary/);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as DemoSummary;
    expect(summary.chain.dataDir).to.equal(join(out, 'chain'));
    expect(summary.chain.genesisHash).to.match(/^0x[0-9a-f]{64}$/);
    expect(summary.rounds.map((r) => [r.kind, r.round])).to.deep.equal([
      ['pretrain', 0],
      ['pretrain', 1],
      ['finetune', 0],
    ]);
    for (const r of summary.rounds) {
      expect(r.checkpointId).to.match(/^0x[0-9a-f]{64}$/);
      expect(r.finalizeBlockHash).to.match(/^0x[0-9a-f]{64}$/);
      expect(r.evalLoss).to.be.a('number').and.to.be.greaterThan(0);
    }
    expect(summary.evalLoss.after).to.be.lessThan(summary.evalLoss.before);
    expect(summary.certified).to.include(summary.rounds[1]!.checkpointId);
    expect(summary.certified).to.include(summary.rounds[2]!.checkpointId);
    expect(summary.download.checkpointId).to.equal(summary.rounds[2]!.checkpointId);
    expect(existsSync(join(summary.download.dir, 'model.safetensors'))).to.equal(true);
    expect(summary.wire.encodedBytes).to.be.greaterThan(0).and.lessThan(summary.wire.denseBytes);
    expect(summary.evalExamples).to.equal(128);
    // Time in rounds is part of the run's time, and both samples name the checkpoints they came from.
    expect(summary.trainingSeconds).to.be.greaterThan(0).and.lessThan(summary.wallSeconds);
    expect(summary.samples.pretrain.checkpointId).to.equal(summary.rounds[1]!.checkpointId);
    expect(summary.samples.finetune.checkpointId).to.equal(summary.rounds[2]!.checkpointId);
    expect(summary.samples.pretrain.text).to.be.a('string').and.not.equal('');
    expect(summary.generated).to.equal(summary.samples.finetune.text);
    // The last round of each proposal was repeated from its published updates, one contribution re-executed.
    expect(summary.verified.map((v) => [v.proposal, v.round, v.ok, v.code])).to.deep.equal([
      [summary.rounds[1]!.proposal, 1, true, undefined],
      [summary.rounds[2]!.proposal, 0, true, undefined],
    ]);

    // The chain folder, restarted: the same blocks, and every checkpoint in a finalized finalizeRound.
    const devnet = await startDevnet({
      port: 0,
      dataDir: summary.chain.dataDir,
      blockMode: 'manual',
      logger,
    });
    const client = await connect({ url: devnet.url, logger });
    try {
      expect(devnet.resumed).to.equal(true);
      expect(devnet.genesisHash).to.equal(summary.chain.genesisHash);
      const state = await syncState(client, {
        state: initialState({ only: summary.network as `0x${string}` }),
      });
      const net = state.networks[summary.network as `0x${string}`]!;
      for (const r of summary.rounds) {
        expect((await client.api.rpc.chain.getBlockHash(r.finalizeBlock)).toHex()).to.equal(
          r.finalizeBlockHash,
        );
        const p = net.proposals[r.proposal] as RoundProposal;
        expect(p.finalized[r.round]!.checkpoint.id).to.equal(r.checkpointId);
        expect(p.finalized[r.round]!.block).to.equal(r.finalizeBlock);
      }
    } finally {
      await client.close();
      await devnet.close();
    }

    // `fedtune demo --explorer`'s step: the chain back from its folder, the store served, the explorer showing it all.
    const explorer = await exploreDemo({ out, summary, logger });
    try {
      const view = await (await fetch(new URL('api/state', explorer.url))).text();
      for (const r of summary.rounds)
        expect(view, `round ${r.proposal}/${r.round}`).to.include(r.checkpointId);
    } finally {
      await explorer.close();
    }
  });
});
