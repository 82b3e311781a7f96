// The coordinator page: its connected workers, the rounds it has open on chain, and its /metrics as charts over time.
import type { CoordinatorView } from '../view.ts';
import { timeChart, type TimeSeries } from './charts.ts';
import { account, esc, fields, status, table } from './format.ts';
import { roundsOf, type Ctx, type Rendered } from './page.ts';

/** A series summed over the labelled entries whose labels contain `filter` (e.g. outcome="accepted"). */
function labelled(metrics: Record<string, number>, name: string, filter: string): number | null {
  const keys = Object.keys(metrics).filter((k) => k.startsWith(`${name}{`) && k.includes(filter));
  return keys.length ? keys.reduce((sum, k) => sum + metrics[k]!, 0) : null;
}

const CHARTS: {
  title: string;
  series: { label: string; pick: (m: Record<string, number>) => number | null }[];
}[] = [
  {
    title: 'updates',
    series: [
      { label: 'accepted', pick: (m) => labelled(m, 'fedtune_updates_total', 'outcome="accepted"') ?? 0 },
      { label: 'rejected', pick: (m) => labelled(m, 'fedtune_updates_total', 'outcome="rejected"') ?? 0 },
    ],
  },
  {
    title: 'rounds committed',
    series: [{ label: 'rounds', pick: (m) => m.fedtune_rounds_committed_total ?? 0 }],
  },
  {
    title: 'update bytes received (MB)',
    series: [{ label: 'MB', pick: (m) => (m.fedtune_update_bytes_received_total ?? 0) / 1e6 }],
  },
  {
    title: 'last round (s)',
    series: [{ label: 'seconds', pick: (m) => m.fedtune_last_round_seconds ?? null }],
  },
  {
    title: 'frames rejected',
    series: [{ label: 'frames', pick: (m) => m.fedtune_frames_rejected_total ?? 0 }],
  },
];

export function coordinatorPage(ctx: Ctx, data: CoordinatorView | null, loadError: string | null): Rendered {
  if (!ctx.view.coordinator) {
    return {
      title: 'coordinator',
      html: '<h1>Coordinator</h1><p class="error" data-error="E_NO_COORDINATOR">No coordinator is watched: start the explorer with <code>--coordinator http://HOST:PORT</code> (the coordinator\'s HTTP base URL, default port 7300).</p>',
    };
  }
  if (data === null) {
    return {
      title: 'coordinator',
      html: `<h1>Coordinator</h1><p class="${loadError ? 'error' : 'muted'}">${esc(loadError ?? 'loading…')}</p>`,
    };
  }
  const last = data.samples[data.samples.length - 1];
  const open = roundsOf(ctx.net).filter((p) => p.status === 'open');
  const times = data.samples.map((s) => s.t / 1000);
  const html = `
    <h1>Coordinator</h1>
    ${data.error ? `<p class="error" data-error="E_COORDINATOR_DOWN">${esc(data.error)}</p>` : ''}
    ${fields([
      ['URL', `<code>${esc(data.url)}</code>`],
      ['connected workers', `<span id="connected-workers">${last?.connectedWorkers ?? '—'}</span>`],
      [
        'samples',
        `${data.samples.length}${last ? `, the last at ${esc(new Date(last.t).toLocaleTimeString())}` : ''}`,
      ],
    ])}
    <h2>Rounds in progress</h2>
    ${table(
      ['proposal', 'status', 'rounds', 'coordinator', 'endpoint'],
      open.map((p) => [
        `<a href="#/proposal/${p.id}">${p.id}</a>`,
        status(p.status),
        `${p.finalized.length}/${p.round.rounds} finalized; round ${p.finalized.length} running`,
        account(p.coordinator),
        esc(p.coordinatorEndpoint ?? ''),
      ]),
      'id="open-rounds"',
    )}
    <h2>Figures over time</h2>
    <div class="charts">
      <div class="chart" id="chart-workers"></div>
      ${CHARTS.map((_, i) => `<div class="chart" id="chart-${i}"></div>`).join('')}
    </div>`;
  return {
    title: 'coordinator',
    html,
    mount(root) {
      if (data.samples.length === 0) return;
      const cleanups = [
        timeChart(root.querySelector('#chart-workers')!, 'connected workers', times, [
          { label: 'workers', values: data.samples.map((s) => s.connectedWorkers) },
        ]),
        ...CHARTS.map((c, i) =>
          timeChart(
            root.querySelector(`#chart-${i}`)!,
            c.title,
            times,
            c.series.map((s): TimeSeries => ({
              label: s.label,
              values: data.samples.map((x) => s.pick(x.metrics)),
            })),
          ),
        ),
      ];
      return () => cleanups.forEach((f) => f());
    },
  };
}
