// The provenance graph as plain SVG: one lane per proposal, checkpoints left to right by their distance from the
// pre-training they descend from; a fine-tune's lane starts right after its base. No library: it is ~80 lines.
import type { CheckpointSummary } from '../../checkpoints/index.ts';
import type { NetworkState } from '../../pallet-bindings/index.ts';
import { esc } from './format.ts';

const DX = 34;
const DY = 56;
const LEFT = 16;
const TOP = 34;

export function lineageSvg(net: NetworkState, checkpoints: CheckpointSummary[], selected: string): string {
  const byId = new Map(checkpoints.map((c) => [c.id, c]));
  const depth = new Map<string, number>();
  const depthOf = (id: string, guard = 0): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    const c = byId.get(id);
    const d = c && c.parent && guard < 10_000 ? depthOf(c.parent, guard + 1) + 1 : 0;
    depth.set(id, d);
    return d;
  };
  const lanes = [...new Set(checkpoints.map((c) => c.proposal))];
  const lineage = new Set<string>();
  for (let at: string | null = selected; at && !lineage.has(at); at = byId.get(at)?.parent ?? null)
    lineage.add(at);

  const pos = (c: CheckpointSummary) => ({
    x: LEFT + depthOf(c.id) * DX,
    y: TOP + lanes.indexOf(c.proposal) * DY,
  });
  const width = LEFT * 2 + (Math.max(0, ...checkpoints.map((c) => depthOf(c.id))) + 1) * DX + 200;
  const height = TOP + Math.max(0, lanes.length - 1) * DY + 16;
  const edges = checkpoints
    .filter((c) => c.parent && byId.has(c.parent))
    .map((c) => {
      const a = pos(byId.get(c.parent!)!);
      const b = pos(c);
      const on = lineage.has(c.id) && lineage.has(c.parent!);
      return `<path d="M${a.x},${a.y} C${(a.x + b.x) / 2},${a.y} ${(a.x + b.x) / 2},${b.y} ${b.x},${b.y}" class="edge${on ? ' on' : ''}"/>`;
    });
  const labels = lanes.map((proposal) => {
    const first = checkpoints.find((c) => c.proposal === proposal)!;
    const p = net.proposals[proposal];
    const dataset = p?.type === 'round' ? net.datasets[p.round.dataset] : undefined;
    const { x, y } = pos(first);
    return `<text x="${x - 6}" y="${y - 14}" class="lane"><a href="#/proposal/${proposal}">proposal ${proposal} · ${esc(first.kind)}</a>${
      dataset ? ` · <a href="#/network">${esc(dataset.name)}</a>` : ''
    }</text>`;
  });
  const nodes = checkpoints.map((c) => {
    const { x, y } = pos(c);
    const cls = `node${c.certified ? ' certified' : ''}${lineage.has(c.id) ? ' on' : ''}${c.id === selected ? ' selected' : ''}`;
    return `<a href="#/checkpoint/${esc(c.id)}" data-checkpoint="${esc(c.id)}"><circle cx="${x}" cy="${y}" r="${c.id === selected ? 9 : 7}" class="${cls}"><title>${esc(
      `proposal ${c.proposal} round ${c.round} (${c.kind})\n${c.id}\nheld-out loss ${c.evalLoss.toFixed(4)}${c.certified ? '\ncertified' : ''}`,
    )}</title></circle></a>`;
  });
  return `<div class="graph"><svg id="lineage" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="checkpoint lineage">${edges.join('')}${labels.join('')}${nodes.join('')}</svg></div>`;
}
