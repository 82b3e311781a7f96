// The explorer page: hash routes, the state from /api/state, live updates from /api/events, and the banner that
// says what is wrong (node unreachable, unknown network) in words a person can act on.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import type { CoordinatorView, ExplorerView } from '../view.ts';
import { esc } from './format.ts';
import type { Ctx, Rendered } from './page.ts';
import { checkpointPage, checkpointsPage } from './pages-checkpoint.ts';
import { coordinatorPage } from './pages-coordinator.ts';
import { auditPage, networkPage, proposalsPage, workerPage } from './pages-network.ts';
import { proposalPage, roundPage } from './pages-round.ts';

const params = new URLSearchParams(location.search);
const network = params.get('network');
let view: ExplorerView | null = null;
let loadError: string | null = null;
let coordinator: CoordinatorView | null = null;
let coordinatorError: string | null = null;
let cleanup: (() => void) | void = undefined;
let rendered = false;

const $ = (id: string) => document.getElementById(id)!;

async function loadState(): Promise<void> {
  try {
    const res = await fetch(`api/state${network ? `?network=${encodeURIComponent(network)}` : ''}`, {
      cache: 'no-store',
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    view = (await res.json()) as ExplorerView;
    loadError = null;
  } catch (error) {
    loadError = `the explorer server does not answer (${(error as Error).message}): is \`fedtune explorer\` still running?`;
  }
}

async function loadCoordinator(): Promise<void> {
  if (!view?.coordinator) return;
  try {
    const res = await fetch('api/coordinator', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    coordinator = (await res.json()) as CoordinatorView;
    coordinatorError = null;
  } catch (error) {
    coordinatorError = `could not read the coordinator's figures from the explorer (${(error as Error).message})`;
  }
}

function route(ctx: Ctx): Rendered {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const [page = 'network', a, b] = parts;
  switch (page) {
    case '':
    case 'network':
      return networkPage(ctx);
    case 'proposals':
      return proposalsPage(ctx);
    case 'proposal':
      return proposalPage(ctx, Number(a));
    case 'round':
      return roundPage(ctx, Number(a), Number(b));
    case 'checkpoints':
      return checkpointsPage(ctx);
    case 'checkpoint':
      return checkpointPage(ctx, (a ?? '').toLowerCase());
    case 'worker':
      return workerPage(ctx, a ?? '');
    case 'audit':
      return auditPage(ctx);
    case 'coordinator':
      return coordinatorPage(ctx, coordinator, coordinatorError);
    default:
      return {
        title: 'not found',
        html: `<h1>Not found</h1><p class="error" data-error="E_NOT_FOUND">No page ${esc(location.hash)}: try <a href="#/network">the network</a>.</p>`,
      };
  }
}

function renderNav(): void {
  const links = [
    ['network', 'Network'],
    ['proposals', 'Proposals'],
    ['checkpoints', 'Checkpoints'],
    ['audit', 'Audit'],
    ...(view?.coordinator ? [['coordinator', 'Coordinator']] : []),
  ];
  const current = location.hash.replace(/^#\/?/, '').split('/')[0] || 'network';
  $('nav').innerHTML = links
    .map(([href, label]) => `<a href="#/${href}"${current === href ? ' class="current"' : ''}>${label}</a>`)
    .join('');
}

function renderBanner(): void {
  const banner = $('banner');
  const problems: { code: string; text: string }[] = [];
  if (loadError) problems.push({ code: 'E_EXPLORER_DOWN', text: loadError });
  if (view && !view.chain.connected)
    problems.push({
      code: 'E_CHAIN_UNREACHABLE',
      text: view.chain.error ?? `the node at ${view.chain.url} does not answer`,
    });
  else if (view?.chain.error) problems.push({ code: 'E_FOLLOW', text: view.chain.error });
  banner.hidden = problems.length === 0;
  banner.innerHTML = problems.map((p) => `<p data-error="${p.code}">${esc(p.text)}</p>`).join('');
  if (view) {
    $('head').innerHTML =
      `block <span id="height">${view.chain.height}</span> · <code title="genesis ${esc(view.chain.genesisHash)}">${esc(view.chain.url)}</code>`;
  }
}

function render(): void {
  renderNav();
  renderBanner();
  const page = $('page');
  if (typeof cleanup === 'function') cleanup();
  cleanup = undefined;
  if (!view) {
    page.innerHTML = `<p class="muted">${esc(loadError ? 'waiting for the explorer server…' : 'loading…')}</p>`;
    return;
  }
  if (!view.network) {
    const e = view.error ?? { code: 'E_NO_NETWORK', message: 'no network' };
    page.innerHTML = `<h1>Choose a network</h1><p class="error" data-error="${esc(e.code)}">${esc(e.message)}</p>${
      view.networks.length
        ? `<ul id="networks">${view.networks
            .map(
              (n) =>
                `<li><a href="?network=${esc(n.id)}#/network">${esc(n.name)}</a> <code>${esc(n.id)}</code> (created in block ${n.createdAt})</li>`,
            )
            .join('')}</ul>`
        : ''
    }`;
    document.title = 'fedtune explorer';
    return;
  }
  const scrollY = window.scrollY;
  const out = route({ view, net: view.network });
  document.title = `${out.title} · ${view.network.name} · fedtune explorer`;
  page.innerHTML = out.html;
  cleanup = out.mount?.(page);
  window.scrollTo(0, scrollY);
  document.body.dataset.height = String(view.chain.height);
  if (!rendered) {
    rendered = true;
    performance.mark('explorer:rendered');
  }
}

function listen(): void {
  const events = new EventSource('api/events');
  let reload: Promise<void> | null = null;
  const refresh = () => {
    // One fetch at a time; a burst of heads coalesces into the next one.
    reload ??= loadState()
      .then(() => (location.hash.startsWith('#/coordinator') ? loadCoordinator() : undefined))
      .then(render)
      .finally(() => (reload = null));
  };
  events.addEventListener('head', refresh);
  events.addEventListener('chain', refresh);
  events.addEventListener('coordinator', () => {
    if (location.hash.startsWith('#/coordinator')) void loadCoordinator().then(render);
  });
  events.onerror = () => {
    loadError =
      'lost the live connection to the explorer server; retrying (is `fedtune explorer` still running?)';
    renderBanner();
  };
  events.onopen = () => {
    if (loadError) refresh();
  };
}

window.addEventListener('hashchange', () => {
  if (location.hash.startsWith('#/coordinator')) void loadCoordinator().then(render);
  else render();
  window.scrollTo(0, 0);
});

void (async () => {
  await loadState();
  if (location.hash.startsWith('#/coordinator')) await loadCoordinator();
  render();
  listen();
})();
