// The network, proposals, worker and audit pages.
import type { Ctx, Rendered } from './page.ts';
import { isRound, roundsOf } from './page.ts';
import { account, bytes, esc, fields, planck, short, status, table } from './format.ts';

export function networkPage({ view, net }: Ctx): Rendered {
  const rounds = roundsOf(net);
  const finalized = rounds.flatMap((p) => p.finalized);
  const rewards = finalized.flatMap((f) => f.rewards).reduce((sum, r) => sum + BigInt(r.amount), 0n);
  const budget = rounds
    .filter((p) => p.status !== 'rejected')
    .reduce((sum, p) => sum + BigInt(p.round.rewardPerRound) * BigInt(p.round.rounds), 0n);
  const certified = view.checkpoints.filter((c) => c.certified).length;
  const html = `
    <h1 data-network="${esc(net.id)}">${esc(net.name)}</h1>
    ${fields([
      ['network id', short(net.id, 10)],
      ['founder', account(net.founder)],
      ['created', `block ${net.createdAt}`],
      ['quorum', `${net.quorum.numerator}/${net.quorum.denominator} of members`],
      ['voting period', `${net.votingPeriod} blocks`],
      ['proposals', `<a href="#/proposals">${net.proposals.length}</a> (${net.voting.length} voting)`],
      ['rounds finalized', String(finalized.length)],
      ['checkpoints', `<a href="#/checkpoints">${view.checkpoints.length}</a> (${certified} certified)`],
      ['rewards paid', planck(rewards)],
      [
        'rewards budgeted',
        `${planck(budget)} <span class="muted">(reward per round × rounds, proposals not rejected)</span>`,
      ],
    ])}
    <h2>Members</h2>
    ${table(
      ['account', 'roles'],
      net.members.map((m) => [account(m), net.coordinators.includes(m) ? 'member, coordinator' : 'member']),
      'id="members"',
    )}
    <h2>Coordinators</h2>
    ${table(
      ['account'],
      net.coordinators.map((c) => [account(c)]),
      'id="coordinators"',
    )}
    <h2>Datasets</h2>
    ${table(
      ['name', 'root', 'records', 'shards', 'size', 'licence', 'source', 'owner', 'block'],
      Object.values(net.datasets).map((d) => [
        `<span id="dataset-${esc(d.root)}">${esc(d.name)}</span>`,
        short(d.root),
        String(d.records),
        String(d.shards),
        bytes(d.bytes),
        esc(d.license),
        esc(d.source),
        account(d.owner),
        String(d.block),
      ]),
      'id="datasets"',
    )}
    <h2>Registered workers</h2>
    ${table(
      ['account', 'backend', 'device', 'memory', 'endpoint', 'block'],
      Object.values(net.workers).map((w) => [
        account(w.account),
        esc(w.capabilities.backend),
        esc(w.capabilities.device),
        bytes(w.capabilities.memoryBytes),
        w.endpoint ? esc(w.endpoint) : '<span class="muted">—</span>',
        String(w.block),
      ]),
      'id="workers"',
    )}`;
  return { title: net.name, html };
}

export function proposalsPage({ net }: Ctx): Rendered {
  const rows = [...net.proposals].reverse().map((p) => {
    const what = isRound(p)
      ? `${esc(p.round.kind.toLowerCase())} on ${esc(net.datasets[p.round.dataset]?.name ?? p.round.dataset.slice(0, 10))}`
      : `${esc(p.membership.action.toLowerCase())} member ${account(p.membership.account)}`;
    const progress = isRound(p) ? `${p.finalized.length}/${p.round.rounds}` : '';
    return [
      `<a href="#/proposal/${p.id}">${p.id}</a>`,
      what,
      status(p.status),
      `${p.ayes} aye / ${p.nays} nay (needs ${p.ayesNeeded})`,
      `block ${p.deadline}`,
      progress,
      account(p.proposer),
    ];
  });
  return {
    title: 'proposals',
    html: `<h1>Proposals</h1>${table(['id', 'what', 'status', 'votes', 'deadline', 'rounds', 'proposer'], rows, 'id="proposals"')}`,
  };
}

export function workerPage({ net, view }: Ctx, who: string): Rendered {
  const w = net.workers[who];
  const contributions = roundsOf(net).flatMap((p) =>
    p.finalized.flatMap((f) =>
      f.contributors
        .filter((c) => c.account === who)
        .map((c) => ({ p, f, c, reward: f.rewards.filter((r) => r.account === who) })),
    ),
  );
  const rewards = roundsOf(net)
    .flatMap((p) => p.finalized.flatMap((f) => f.rewards.map((r) => ({ p, f, r }))))
    .filter((x) => x.r.account === who);
  const total = rewards.reduce((sum, x) => sum + BigInt(x.r.amount), 0n);
  const votes = net.proposals.filter((p) => p.votes[who] !== undefined);
  const attests = view.checkpoints.flatMap((c) => {
    const a = net.checkpoints[c.id as `0x${string}`]?.attests[who];
    return a ? [{ c, a }] : [];
  });
  const roles = [
    net.members.includes(who) ? 'member' : null,
    net.coordinators.includes(who) ? 'coordinator' : null,
    w ? 'worker' : null,
  ].filter((r) => r !== null);
  const html = `
    <h1>Account <code class="wrap" data-account="${esc(who)}">${esc(who)}</code></h1>
    ${fields([
      ['roles', roles.length ? esc(roles.join(', ')) : '<span class="muted">none in this network</span>'],
      [
        'registration',
        w
          ? `block ${w.block}: ${esc(w.capabilities.backend)} on ${esc(w.capabilities.device)}, ${bytes(w.capabilities.memoryBytes)}${w.endpoint ? `, ${esc(w.endpoint)}` : ''}`
          : '<span class="muted">not registered as a worker</span>',
      ],
      ['contributions', String(contributions.length)],
      ['rewards received', planck(total)],
    ])}
    <h2>Contributions</h2>
    ${table(
      ['round', 'samples', 'shards', 'reward', 'receipt: inclusion proof against', 'block'],
      contributions.map(({ p, f, c, reward }) => [
        `<a href="#/round/${p.id}/${f.round}">proposal ${p.id} round ${f.round}</a>`,
        String(c.samples),
        esc(c.shards.join(', ')),
        reward.length ? reward.map((r) => planck(r.amount)).join(' + ') : '<span class="muted">—</span>',
        `updatesRoot ${short(f.updatesRoot)}`,
        String(f.block),
      ]),
      'id="contributions"',
    )}
    <p class="muted">A receipt is the coordinator's Merkle proof that this account's update is among the leaves of the round's updatesRoot; the worker keeps it, the chain keeps the root.</p>
    <h2>Rewards</h2>
    ${table(
      ['round', 'amount', 'block'],
      rewards.map(({ p, f, r }) => [
        `<a href="#/round/${p.id}/${f.round}">proposal ${p.id} round ${f.round}</a>`,
        planck(r.amount),
        String(f.block),
      ]),
      'id="rewards"',
    )}
    <h2>Votes</h2>
    ${table(
      ['proposal', 'vote'],
      votes.map((p) => [`<a href="#/proposal/${p.id}">${p.id}</a>`, p.votes[who] ? 'aye' : 'nay']),
    )}
    <h2>Attestations</h2>
    ${table(
      ['checkpoint', 'measured eval loss', 'verdict', 'block'],
      attests.map(({ c, a }) => [
        `<a href="#/checkpoint/${esc(c.id)}">${short(c.id)}</a>`,
        a.evalLoss.toFixed(4),
        a.verdict ? 'good' : `no: ${esc(a.code ?? '(no code)')}`,
        String(a.block),
      ]),
    )}`;
  return { title: `account ${who.slice(0, 8)}`, html };
}

export function auditPage({ view }: Ctx): Rendered {
  const rows = [...view.audit]
    .reverse()
    .map((a) => [
      `${a.block}`,
      `${a.extrinsic}.${a.call}`,
      account(a.signer),
      `<code>${esc(a.callType)}</code>`,
      `<code>${esc(a.code)}</code>`,
      esc(a.reason),
    ]);
  return {
    title: 'audit',
    html: `<h1>Audit: rejected calls</h1><p class="muted">Calls that reached the chain but broke a protocol rule: they changed nothing. Newest first.</p>${table(
      ['block', 'extrinsic.call', 'signer', 'call', 'code', 'reason'],
      rows,
      'id="audit"',
    )}`,
  };
}
