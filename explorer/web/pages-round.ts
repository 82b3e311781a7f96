// The proposal page (what was asked, the votes, the rounds and their loss curve) and the round page.
import type { RoundProposal } from '../../pallet-bindings/index.ts';
import { lossChart } from './charts.ts';
import { account, checkpointLink, esc, fields, loss, planck, short, status, table } from './format.ts';
import { extra, isRound, notFound, type Ctx, type Rendered } from './page.ts';

function datasetLink(ctx: Ctx, root: string): string {
  const d = ctx.net.datasets[root as `0x${string}`];
  return `${d ? esc(d.name) : '<span class="muted">(unregistered)</span>'} ${short(root)}`;
}

function modelText(p: RoundProposal): string {
  const model = p.round.model;
  if ('hash' in model) return `config hash ${short(model.hash)}`;
  try {
    return `<pre>${esc(JSON.stringify(JSON.parse(model.config), null, 1))}</pre>`;
  } catch {
    return `<pre>${esc(model.config)}</pre>`;
  }
}

/** The base model's held-out loss, measured before the first round (null when the coordinator did not report it). */
function baseLoss(p: RoundProposal): number | null {
  const first = p.finalized[0];
  return first ? extra(first.metrics, 'baseEvalLoss') : null;
}

function chartMount(p: RoundProposal) {
  return (root: HTMLElement) => {
    const el = root.querySelector<HTMLElement>('#loss-chart');
    if (!el || p.finalized.length === 0) return;
    return lossChart(
      el,
      p.finalized.map((f) => ({
        round: f.round,
        trainLoss: f.metrics.trainLoss,
        evalLoss: f.metrics.evalLoss,
      })),
      baseLoss(p),
    );
  };
}

function roundsTable(p: RoundProposal): string {
  return table(
    ['round', 'train loss', 'held-out loss', 'contributors', 'checkpoint', 'block'],
    p.finalized.map((f) => [
      `<a href="#/round/${p.id}/${f.round}">${f.round}</a>`,
      loss(f.metrics.trainLoss),
      loss(f.metrics.evalLoss),
      String(f.contributors.length),
      checkpointLink(f.checkpoint.id),
      String(f.block),
    ]),
    'id="rounds"',
  );
}

export function proposalPage(ctx: Ctx, id: number): Rendered {
  const p = ctx.net.proposals[id];
  if (!p)
    return notFound(
      `There is no proposal ${esc(id)} in ${esc(ctx.net.name)}: see <a href="#/proposals">the proposals</a>.`,
    );
  const votedAt = ctx.view.votedAt[id] ?? {};
  const votes = table(
    ['member', 'vote', 'when'],
    p.electorate.map((m) => [
      account(m),
      p.votes[m] === undefined ? '<span class="muted">not voted</span>' : p.votes[m] ? 'aye' : 'nay',
      votedAt[m] === undefined ? '' : `block ${votedAt[m]}`,
    ]),
    'id="votes"',
  );
  const common: [string, string][] = [
    ['status', status(p.status)],
    ['proposer', account(p.proposer)],
    ['proposed', `block ${p.proposedAt}`],
    ['voting deadline', `block ${p.deadline}`],
    ['votes', `${p.ayes} aye, ${p.nays} nay; ${p.ayesNeeded} ayes approve`],
    ['decided', p.decidedAt === null ? '<span class="muted">not yet</span>' : `block ${p.decidedAt}`],
  ];
  if (!isRound(p)) {
    return {
      title: `proposal ${id}`,
      html: `<h1>Proposal ${id}: ${esc(p.membership.action.toLowerCase())} a member</h1>${fields([
        ['account', account(p.membership.account)],
        ['applied', p.applied ? 'yes' : 'no'],
        ...common,
      ])}<h2>Votes</h2>${votes}`,
    };
  }
  const r = p.round;
  const hp = r.hyperParams;
  const html = `
    <h1>Proposal ${id}: ${esc(r.kind.toLowerCase())}</h1>
    ${fields([
      ['kind', esc(r.kind)],
      ['base checkpoint', checkpointLink(r.baseCheckpoint)],
      ['dataset', datasetLink(ctx, r.dataset)],
      ['rounds', `${p.finalized.length} of ${r.rounds} finalized`],
      ['workers', `${r.minWorkers} to ${r.maxWorkers}`],
      ['round deadline', `${r.roundDeadline} s`],
      ['reward per round', planck(r.rewardPerRound)],
      [
        'coordinator',
        p.coordinator
          ? `${account(p.coordinator)} at ${esc(p.coordinatorEndpoint ?? '')}`
          : '<span class="muted">not opened</span>',
      ],
      ['opened', p.openedAt === null ? '<span class="muted">not yet</span>' : `block ${p.openedAt}`],
      ...(p.failure
        ? ([['failure', `block ${p.failure.block}: ${esc(p.failure.reason)}`]] as [string, string][])
        : []),
      ...common,
    ])}
    <h2>Hyper-parameters</h2>
    ${fields([
      ['local steps', String(hp.localSteps)],
      ['batch size', String(hp.batchSize)],
      ['learning rate', String(hp.learningRate)],
      ['optimiser', esc(hp.optimiser)],
      ['FedProx μ', String(hp.fedProxMu)],
      ['aggregator', `${esc(hp.aggregator)} <code>${esc(hp.aggregatorOptions)}</code>`],
      ['update encoding', esc(hp.updateEncoding)],
    ])}
    <h2>Model</h2>${modelText(p)}
    <h2>Votes</h2>${votes}
    <h2>Loss per round</h2>
    ${p.finalized.length ? '<div id="loss-chart" class="chart"></div>' : '<p class="muted">no round finalized yet</p>'}
    <h2>Rounds</h2>${roundsTable(p)}`;
  return { title: `proposal ${id}`, html, mount: chartMount(p) };
}

export function roundPage(ctx: Ctx, id: number, round: number): Rendered {
  const p = ctx.net.proposals[id];
  if (!isRound(p))
    return notFound(`There is no round proposal ${esc(id)}: see <a href="#/proposals">the proposals</a>.`);
  const f = p.finalized[round];
  if (!f)
    return notFound(
      `Round ${esc(round)} of proposal ${id} is not finalized (${p.finalized.length} of ${p.round.rounds} are): see <a href="#/proposal/${id}">the proposal</a>.`,
    );
  const rewardOf = (a: string) => f.rewards.filter((r) => r.account === a);
  const others = f.rewards.filter((r) => !f.contributors.some((c) => c.account === r.account));
  const html = `
    <h1>Proposal ${id}, round ${round}</h1>
    ${fields([
      [
        'proposal',
        `<a href="#/proposal/${id}">${id}</a> (${esc(p.round.kind.toLowerCase())}, ${p.finalized.length}/${p.round.rounds} rounds)`,
      ],
      ['dataset', datasetLink(ctx, p.round.dataset)],
      ['checkpoint', checkpointLink(f.checkpoint.id)],
      ['finalized in block', `<span id="finalize-block">${f.block}</span>`],
      ['coordinator', account(f.coordinator)],
      ['updatesRoot', `<code class="wrap" id="updates-root">${esc(f.updatesRoot)}</code>`],
      ['dataset shards root', `<code class="wrap">${esc(f.datasetShardsRoot)}</code>`],
      ['train loss', loss(f.metrics.trainLoss)],
      ['held-out loss', `<span id="eval-loss">${loss(f.metrics.evalLoss)}</span>`],
      ...f.metrics.extra.map(
        (m) => [esc(m.name), String(Number(m.value.toPrecision(6)))] as [string, string],
      ),
    ])}
    <h2>Loss per round</h2>
    <div id="loss-chart" class="chart"></div>
    <h2>Contributors</h2>
    ${table(
      ['account', 'samples', 'shards', 'reward'],
      f.contributors.map((c) => [
        account(c.account),
        String(c.samples),
        esc(c.shards.join(', ')),
        rewardOf(c.account)
          .map((r) => planck(r.amount))
          .join(' + ') || '<span class="muted">—</span>',
      ]),
      'id="contributors"',
    )}
    ${
      others.length
        ? `<h2>Other transfers in the commit</h2>${table(
            ['account', 'amount'],
            others.map((r) => [account(r.account), planck(r.amount)]),
          )}`
        : ''
    }
    <p><a href="#/round/${id}/${round - 1}" ${round === 0 ? 'hidden' : ''}>← round ${round - 1}</a>
       <a href="#/round/${id}/${round + 1}" ${round + 1 >= p.finalized.length ? 'hidden' : ''}>round ${round + 1} →</a></p>`;
  return { title: `round ${id}/${round}`, html, mount: chartMount(p) };
}
