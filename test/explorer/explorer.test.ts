// `fedtune explorer` in a real browser: a dev chain with a network that has run rounds, the explorer serving it,
// headless Chromium reading every page, verifying a checkpoint with WebCrypto and catching a corrupted chunk.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { Metrics } from '../../coordinator/index.ts';
import { startExplorer, type Explorer } from '../../explorer/index.ts';
import type { RoundProposal } from '../../pallet-bindings/index.ts';
import { INSTALL_WAIT_MS, openBrowser, type Browser } from './browser.ts';
import { buildFixture, chainRelay, closedPort, lossAt, type Fixture } from './fixture.ts';

const logger = pino({ level: 'silent' });

/** A coordinator's HTTP face as the explorer sees it: /health and a real Metrics registry's /metrics. */
async function fakeCoordinator(metrics: Metrics): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (req.url === '/health') res.end(JSON.stringify({ status: 'ok', connectedWorkers: 2 }));
    else if (req.url === '/metrics') res.end(metrics.render());
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('fedtune explorer in Chromium', function () {
  this.timeout(180_000);
  let dir: string;
  let fx: Fixture;
  let explorer: Explorer;
  let browser: Browser;
  let coordinator: { url: string; server: Server };
  let relay: Awaited<ReturnType<typeof chainRelay>>;
  let downPort: number;
  const metrics = new Metrics();

  const text = (selector: string) => browser.page.locator(selector).innerText();
  async function open(hash: string) {
    await browser.page.goto(`${explorer.url}#/${hash}`);
    await browser.page.waitForSelector('main h1');
  }
  /** What the chart drew: uPlot's own data arrays, read from the instance on the element. */
  const chartData = () =>
    browser.page.$eval(
      '#loss-chart',
      (el) => (el as HTMLElement & { uplot: { data: number[][] } }).uplot.data,
    );

  before(async function () {
    this.timeout(180_000 + INSTALL_WAIT_MS);
    dir = mkdtempSync(join(tmpdir(), 'fedtune-explorer-'));
    fx = await buildFixture(dir, logger);
    metrics.inc('fedtune_updates_total', 'Updates by outcome', { outcome: 'accepted', code: '' }, 6);
    metrics.inc('fedtune_rounds_committed_total', 'Rounds committed', {}, 3);
    coordinator = await fakeCoordinator(metrics);
    relay = await chainRelay(fx.devnet.url);
    downPort = await closedPort();
    explorer = await startExplorer({
      chain: relay.url,
      network: fx.network,
      coordinator: coordinator.url,
      coordinatorPollMs: 200,
      // After the URI on chain: a source that corrupts chunk 2, and one that is down.
      sources: [fx.corrupt.url, `http://127.0.0.1:${downPort}`],
      port: 0,
      logger,
    });
    browser = await openBrowser();
  });

  after(async () => {
    await browser?.close();
    await explorer?.close();
    coordinator?.server.close();
    await fx?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(function () {
    // Taken out, so that one test's page error fails that test only.
    expect(browser.errors.splice(0), 'errors in the page').to.deep.equal([]);
  });

  it('network: members, coordinators, datasets, workers and reward totals', async () => {
    await open('network');
    await browser.page.waitForSelector('#datasets');
    expect(await text('h1')).to.equal('explorer-net');
    const members = await text('#members');
    for (const s of [fx.alice, fx.bob, fx.charlie]) expect(members).to.include(s.address.slice(0, 8));
    const datasets = await text('#datasets');
    expect(datasets).to.include('sotu').and.to.include('moby-dick').and.to.include('public-domain');
    expect(await browser.page.locator('#workers tbody tr').count()).to.equal(2);
    // 5 rounds paid 0.6 + 0.4 UNIT each.
    expect(await text('main')).to.match(/rewards paid\s+5 UNIT/);
    await browser.screenshot('network');
  });

  it('proposals: kind, dataset, status, votes and rounds of each', async () => {
    await open('proposals');
    const rows = browser.page.locator('#proposals tbody tr');
    expect(await rows.count()).to.equal(3);
    expect(await rows.nth(2).innerText()).to.match(/pretrain on sotu\s+completed\s+2 aye \/ 0 nay.*3\/3/s);
    expect(await rows.nth(1).innerText()).to.match(/finetune on moby-dick\s+open.*2\/3/s);
    expect(await rows.nth(0).innerText()).to.match(/100\/100/);
    await browser.screenshot('proposals');
  });

  it('proposal: hyper-parameters, votes, and a loss chart with one point per round', async () => {
    await open('proposal/0');
    await browser.page.waitForSelector('#loss-chart canvas');
    const [rounds, train, held, base] = await chartData();
    expect(rounds).to.deep.equal([0, 1, 2]);
    expect(train).to.deep.equal([0, 1, 2].map((r) => lossAt(0, r).trainLoss));
    expect(held).to.deep.equal([0, 1, 2].map((r) => lossAt(0, r).evalLoss));
    expect(base).to.deep.equal([5.9, 5.9, 5.9]);
    // Alice proposed and voted in one extrinsic, Bob voted in a later block, Charlie not at all.
    const p0 = (await fx.net()).proposals[0]!;
    const votes = (await text('#votes')).split('\n');
    expect(votes[1]).to.match(new RegExp(`aye\\s+block ${p0.proposedAt}$`));
    expect(votes[2]).to.match(/aye\s+block (\d+)$/);
    expect(Number(/block (\d+)$/.exec(votes[2]!)![1]))
      .to.be.greaterThan(p0.proposedAt)
      .and.at.most(p0.deadline);
    expect(votes[3]).to.match(/not voted\s*$/);
    expect(await text('main'))
      .to.include('fedavg')
      .and.to.include('adamw');
    await browser.screenshot('proposal');
  });

  it('round: contributors with samples, shards and rewards, updatesRoot, the finalize block, the checkpoint', async () => {
    const net = await fx.net();
    const f = (net.proposals[0] as RoundProposal).finalized[1]!;
    await open('round/0/1');
    expect(await text('#updates-root')).to.equal(f.updatesRoot);
    expect(await text('#finalize-block')).to.equal(String(f.block));
    const contributors = await text('#contributors');
    expect(contributors).to.match(/121\s+0, 1\s+0\.6 UNIT/);
    expect(contributors).to.match(/80\s+2, 3\s+0\.4 UNIT/);
    expect(await browser.page.locator(`a[href="#/checkpoint/${f.checkpoint.id}"]`).count()).to.equal(1);
    expect((await chartData())[0]).to.have.length(3);
    await browser.screenshot('round');
  });

  it('checkpoint: attestations, lineage graph, sources; verifies in the browser and names a corrupt chunk', async () => {
    const net = await fx.net();
    const fine = (net.proposals[1] as RoundProposal).finalized[1]!.checkpoint.id;
    const pre = (net.proposals[0] as RoundProposal).finalized[2]!.checkpoint.id;
    await open(`checkpoint/${pre}`);
    expect(await text('#certified')).to.match(/^yes, in block \d+/);
    expect(await browser.page.locator('#attestations tbody tr').count()).to.equal(2);

    await open(`checkpoint/${fine}`);
    // Every committed checkpoint is a node; the lineage back to pre-training is drawn: 2 fine-tune + 3 pre-train.
    expect(await browser.page.locator('#lineage circle').count()).to.equal(
      Object.keys(net.checkpoints).length,
    );
    expect(await browser.page.locator('#lineage circle.on').count()).to.equal(5);
    expect(await browser.page.locator('#lineage-table tbody tr').count()).to.equal(5);
    expect(await browser.page.locator('#sources tbody tr').count()).to.equal(3);
    await browser.page.waitForFunction(
      () => !document.getElementById('chunk-count')!.textContent!.startsWith('reading'),
    );
    expect(await text('#chunk-count')).to.equal('5 of 1.0 KiB (manifest checked against the id)');

    await browser.page.click('#verify-all');
    await browser.page.waitForSelector('#verify-verdict:not([data-verdict="running"])');
    expect(await browser.page.getAttribute('#verify-verdict', 'data-verdict')).to.equal('verified');
    expect(await text('#verify-verdict')).to.include(`all 5 chunks (4396 bytes) match checkpoint ${fine}`);
    expect(await browser.page.locator('#save-file').count()).to.equal(1);

    await browser.screenshot('checkpoint-verified');

    await browser.page.click('[data-verify-source="1"]');
    await browser.page.waitForSelector('#verify-verdict:not([data-verdict="running"])');
    expect(await browser.page.getAttribute('#verify-verdict', 'data-verdict')).to.equal('corrupt');
    expect(await text('#verify-verdict'))
      .to.include('chunk 2 failed verification')
      .and.to.include(fx.corrupt.url);
    const failures = await text('#verify-failures');
    expect(failures).to.match(new RegExp(`chunk 2 from ${fx.corrupt.url}: CORRUPT`));
    await browser.screenshot('checkpoint-corrupt');

    await browser.page.click('[data-verify-source="2"]');
    await browser.page.waitForSelector('#verify-verdict:not([data-verdict="running"])');
    expect(await browser.page.getAttribute('#verify-verdict', 'data-verdict')).to.equal('unavailable');
    expect(await text('#verify-verdict')).to.include(
      `every source is down for ${fine}: http://127.0.0.1:${downPort}: http://127.0.0.1:${downPort} does not answer for the manifest (ECONNREFUSED) [E_SOURCE_DOWN]`,
    );
  });

  it("worker: an account's registration, contributions, receipts and rewards", async () => {
    await open(`worker/${fx.bob.address}`);
    expect(await text('main'))
      .to.match(/roles\s+member, worker/)
      .and.to.match(/wasm on cpu/);
    // 3 + 2 rounds with stored checkpoints, 100 synthetic ones.
    expect(await browser.page.locator('#contributions tbody tr').count()).to.equal(105);
    expect(await browser.page.locator('#rewards tbody tr').count()).to.equal(5);
    expect(await text('main')).to.match(/rewards received\s+3 UNIT/);
    await browser.screenshot('worker');
  });

  it('audit: the rejected call with its reason', async () => {
    await open('audit');
    const rows = browser.page.locator('#audit tbody tr');
    expect(await rows.count()).to.equal(1);
    expect(await rows.first().innerText()).to.match(/vote\s+E_VOTING_CLOSED\s+voting on proposal 0 closed/);
    await browser.screenshot('audit');
  });

  it('coordinator: its connected workers and /metrics figures as charts over time', async () => {
    await open('coordinator');
    await browser.page.waitForFunction(
      () => Number(document.querySelector<HTMLElement>('#chart-0')?.dataset.points) >= 2,
    );
    expect(await text('#connected-workers')).to.equal('2');
    expect(await text('#open-rounds')).to.match(/^1\b|\n1\b/m);
    const accepted = await browser.page.$eval(
      '#chart-0',
      (el) => (el as HTMLElement & { uplot: { data: number[][] } }).uplot.data[1],
    );
    expect(accepted.every((v) => v === 6)).to.equal(true);
    await browser.screenshot('coordinator');
  });

  it('updates a page without a reload when a round is finalized on chain', async () => {
    await open('proposal/1');
    await browser.page.waitForSelector('#loss-chart canvas');
    expect((await chartData())[0]).to.deep.equal([0, 1]);
    await browser.page.evaluate(() => ((window as unknown as { marker: number }).marker = 1));
    const net = await fx.net();
    await fx.commitRound(1, 2, (net.proposals[1] as RoundProposal).finalized[1]!.checkpoint.id);
    await browser.page.waitForFunction(
      () => document.querySelector<HTMLElement>('#loss-chart')?.dataset.points === '3',
    );
    expect((await chartData())[0]).to.deep.equal([0, 1, 2]);
    expect(await browser.page.evaluate(() => (window as unknown as { marker?: number }).marker)).to.equal(1);
  });

  it('loads a 100-round proposal (figure printed) and says what to do about an unknown network', async () => {
    await browser.page.goto(`${explorer.url}#/proposal/2`);
    await browser.page.waitForSelector('#loss-chart canvas');
    expect((await chartData())[0]).to.have.length(100);
    // Five loads of the page (each a fresh document): navigation start to the first render with the chain's data.
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      await browser.page.reload();
      await browser.page.waitForSelector('#loss-chart canvas');
      times.push(
        await browser.page.evaluate(() => performance.getEntriesByName('explorer:rendered')[0]!.startTime),
      );
    }
    times.sort((a, b) => a - b);
    console.log(
      `      page load, 100-round proposal: first render with data in ${times[2]!.toFixed(0)} ms (median of 5; ${times[0]!.toFixed(0)}–${times[4]!.toFixed(0)} ms)`,
    );
    await browser.screenshot('proposal-100-rounds');

    await browser.page.goto(`${explorer.url}?network=0x${'12'.repeat(32)}#/network`);
    await browser.page.waitForSelector('[data-error="E_UNKNOWN_NETWORK"]');
    expect(await text('[data-error="E_UNKNOWN_NETWORK"]')).to.include(
      `Networks here: ${fx.network} (explorer-net)`,
    );
    expect(
      await browser.page.locator(`#networks a[href="?network=${fx.network}#/network"]`).count(),
    ).to.equal(1);
  });

  it('says so when the chain node goes away, and clears it when the node is back', async () => {
    await open('network');
    relay.cut();
    await browser.page.waitForSelector('#banner [data-error="E_CHAIN_UNREACHABLE"]');
    expect(await text('#banner')).to.include(`lost the node at ${relay.url}; reconnecting`);
    // The pages keep showing the last state.
    expect(await text('h1')).to.equal('explorer-net');
    await browser.screenshot('chain-unreachable');
    await relay.restore();
    await browser.page.waitForSelector('#banner', { state: 'hidden', timeout: 20_000 });
  });
});
