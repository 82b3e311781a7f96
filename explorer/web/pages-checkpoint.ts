// The checkpoints list and the checkpoint page: attestations, provenance graph, sources, in-browser verification.
import type { CheckpointSummary } from '../../checkpoints/index.ts';
import { account, bytes, checkpointLink, esc, fields, loss, short, table } from './format.ts';
import { lineageSvg } from './lineage.ts';
import { notFound, type Ctx, type Rendered } from './page.ts';
import {
  fetchManifest,
  verifyCheckpoint,
  type VerifyFailure,
  type VerifyProgress,
  type VerifyResult,
  type VerifySource,
} from './verify.ts';

export function checkpointsPage({ view }: Ctx): Rendered {
  const rows = [...view.checkpoints]
    .reverse()
    .map((c) => [
      checkpointLink(c.id),
      `<a href="#/round/${c.proposal}/${c.round}">${c.proposal}/${c.round}</a>`,
      esc(c.kind),
      loss(c.evalLoss),
      `${c.attestations.positive}/${c.attestations.total}`,
      c.certified
        ? '<span class="status status-completed">certified</span>'
        : '<span class="muted">no</span>',
      bytes(c.bytes),
      String(c.block),
    ]);
  return {
    title: 'checkpoints',
    html: `<h1>Checkpoints</h1>${table(['id', 'proposal/round', 'kind', 'held-out loss', 'attestations', 'certified', 'size', 'block'], rows, 'id="checkpoints"')}`,
  };
}

/** Verifications outlive re-renders (a new block re-renders the page): their state is kept here, by checkpoint id. */
interface Run {
  label: string;
  progress: VerifyProgress | null;
  failures: VerifyFailure[];
  result: VerifyResult | null;
  fileUrl: string | null;
}
const runs = new Map<string, Run>();

function failureText(f: VerifyFailure): string {
  return `${f.what === 'manifest' ? 'manifest' : `chunk ${f.what}`} from ${f.source}: ${f.kind === 'corrupt' ? 'CORRUPT' : 'unavailable'} — ${f.detail}`;
}

function renderRun(el: HTMLElement, id: string) {
  const run = runs.get(id);
  if (!run) {
    el.innerHTML = '';
    return;
  }
  const p = run.progress;
  const verdict = run.result?.verdict ?? 'running';
  el.innerHTML = `
    <p><strong>${esc(run.label)}</strong></p>
    ${p ? `<progress max="${p.chunksTotal}" value="${p.chunksDone}"></progress> <span id="verify-progress">${p.chunksDone}/${p.chunksTotal} chunks, ${bytes(p.bytesDone)} of ${bytes(p.bytesTotal)}</span>` : '<span class="muted">fetching the manifest…</span>'}
    <ul id="verify-failures">${run.failures.map((f) => `<li class="${f.kind}" data-chunk="${esc(f.what)}">${esc(failureText(f))}</li>`).join('')}</ul>
    <p id="verify-verdict" class="verdict verdict-${verdict}" data-verdict="${verdict}">${
      run.result ? `${esc(verdict.toUpperCase())}: ${esc(run.result.message)}` : 'verifying…'
    }</p>
    ${run.fileUrl ? `<p><a id="save-file" href="${run.fileUrl}" download="model.safetensors">Save the verified model.safetensors</a></p>` : ''}`;
}

function startRun(root: HTMLElement, id: string, label: string, sources: { index: number; name: string }[]) {
  const old = runs.get(id);
  if (old?.fileUrl) URL.revokeObjectURL(old.fileUrl);
  const run: Run = { label, progress: null, failures: [], result: null, fileUrl: null };
  runs.set(id, run);
  // The page may have been re-rendered since: look the panel up each time.
  const panel = () => document.getElementById('verify-panel');
  const update = () => {
    const el = panel();
    if (el && el.dataset.checkpoint === id) renderRun(el, id);
  };
  update();
  void verifyCheckpoint({
    id,
    sources,
    onProgress: (p) => {
      run.progress = p;
      update();
    },
    onFailure: (f) => {
      run.failures.push(f);
      update();
    },
  }).then((result) => {
    run.result = result;
    if (result.file) run.fileUrl = URL.createObjectURL(result.file);
    update();
  });
  void root;
}

/** What the page says about a checkpoint's chunks, once its manifest was read and checked (failures are retried). */
const chunkInfo = new Map<string, string>();

async function showChunks(id: string, sources: VerifySource[]): Promise<void> {
  let info = chunkInfo.get(id);
  if (info === undefined) {
    if (!globalThis.crypto?.subtle) {
      info = 'listed in the manifest (this page has no WebCrypto to check it: see the verdict below)';
    } else {
      const failures: VerifyFailure[] = [];
      const manifest = await fetchManifest(id, sources, (f) => failures.push(f));
      if (manifest) {
        info = `${manifest.chunks.length} of ${bytes(manifest.chunkSize)} (manifest checked against the id)`;
        chunkInfo.set(id, info);
      } else {
        info = `unknown: no source served the manifest (${failures.map((f) => `${f.source}: ${f.detail}`).join('; ') || 'no source'})`;
      }
    }
  }
  // The page may show another checkpoint by now.
  const el = document.getElementById('chunk-count');
  if (el && document.getElementById('checkpoint-id')?.textContent === id) el.textContent = info;
}

export function checkpointPage(ctx: Ctx, id: string): Rendered {
  const { net, view } = ctx;
  const c = net.checkpoints[id as `0x${string}`];
  const summary: CheckpointSummary | undefined = view.checkpoints.find((x) => x.id === id);
  if (!c || !summary)
    return notFound(
      `Checkpoint ${esc(id)} is not committed in ${esc(net.name)}: see <a href="#/checkpoints">the checkpoints</a>.`,
    );
  const sources = view.sources[id] ?? [];
  const lineage: CheckpointSummary[] = [];
  for (let at: string | null = id; at; at = view.checkpoints.find((x) => x.id === at)?.parent ?? null) {
    const s = view.checkpoints.find((x) => x.id === at);
    if (!s || lineage.includes(s)) break;
    lineage.push(s);
  }
  const html = `
    <h1>Checkpoint</h1>
    <p><code class="wrap" id="checkpoint-id">${esc(id)}</code></p>
    ${fields([
      [
        'certified',
        c.certified
          ? `<span class="status status-completed" id="certified">yes, in block ${c.certifiedAt}</span>`
          : '<span id="certified">not yet</span>',
      ],
      ['size', `${bytes(c.bytes)} (${c.bytes} bytes)`],
      ['chunks', `<span id="chunk-count">${esc(chunkInfo.get(id) ?? 'reading the manifest…')}</span>`],
      [
        'round',
        `<a href="#/round/${c.proposal}/${c.round}">proposal ${c.proposal}, round ${c.round}</a> (${esc(summary.kind)})`,
      ],
      ['committed in block', String(c.block)],
      ['held-out loss', loss(summary.evalLoss)],
      ['parent', checkpointLink(summary.parent)],
      ['URI on chain', esc(c.uri)],
    ])}
    <h2>Attestations</h2>
    ${table(
      ['member', 'measured held-out loss', 'verdict', 'block'],
      Object.entries(c.attests).map(([who, a]) => [
        account(who),
        a.evalLoss.toFixed(4),
        a.verdict ? 'good' : `no: ${esc(a.code ?? '(no code)')}`,
        String(a.block),
      ]),
      'id="attestations"',
    )}
    <h2>Provenance</h2>
    ${lineageSvg(net, view.checkpoints, id)}
    ${table(
      ['checkpoint', 'round', 'kind', 'dataset', 'held-out loss'],
      lineage.map((s) => {
        const p = net.proposals[s.proposal];
        const d = p?.type === 'round' ? net.datasets[p.round.dataset] : undefined;
        return [
          checkpointLink(s.id),
          `<a href="#/round/${s.proposal}/${s.round}">${s.proposal}/${s.round}</a>`,
          esc(s.kind),
          d ? `${esc(d.name)} ${short(d.root)}` : '—',
          loss(s.evalLoss),
        ];
      }),
      'id="lineage-table"',
    )}
    <h2>Download and verify</h2>
    ${table(
      ['source', 'download', 'verify'],
      sources.map((s) => [
        esc(s.name),
        s.fileUrl
          ? `<a href="${esc(s.fileUrl)}" rel="noopener">model.safetensors</a>`
          : '<span class="muted">templated source</span>',
        `<button type="button" data-verify-source="${s.index}">verify from this source only</button>`,
      ]),
      'id="sources"',
    )}
    ${sources.length ? '<p><button type="button" id="verify-all">Download and verify in the browser</button> <span class="muted">each chunk is tried from the sources in order; SHA-256 by WebCrypto, against the id on chain</span></p>' : '<p class="error" data-error="E_NO_SOURCE">No source is known for this checkpoint: the URI on chain is not an http(s) URL. Start the explorer with --source URL.</p>'}
    <div id="verify-panel" data-checkpoint="${esc(id)}"></div>`;
  return {
    title: `checkpoint ${id.slice(0, 10)}`,
    html,
    mount(root) {
      const panel = root.querySelector<HTMLElement>('#verify-panel');
      if (panel) renderRun(panel, id);
      void showChunks(id, sources);
      root
        .querySelector('#verify-all')
        ?.addEventListener('click', () =>
          startRun(root, id, `Verifying from ${sources.length} source(s)`, sources),
        );
      for (const button of root.querySelectorAll<HTMLButtonElement>('[data-verify-source]')) {
        const source = sources[Number(button.dataset.verifySource)]!;
        button.addEventListener('click', () =>
          startRun(root, id, `Verifying from ${source.name} only`, [source]),
        );
      }
    },
  };
}
