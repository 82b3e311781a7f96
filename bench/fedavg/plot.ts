// Plain SVG line plots of held-out loss against rounds: one file per split, no dependency.
export interface Series {
  label: string;
  points: { round: number; loss: number }[];
  dashed?: boolean;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A 720x440 SVG: x rounds, y held-out loss (nats/byte), a horizontal line at target, a legend. */
export function lossPlot(title: string, series: Series[], target: number | null): string {
  const [w, h, left, right, top, bottom] = [720, 440, 64, 190, 36, 48];
  const all = series.flatMap((s) => s.points);
  const maxX = Math.max(1, ...all.map((p) => p.round));
  const ys = all.map((p) => p.loss).concat(target === null ? [] : [target]);
  const [minY, maxY] = [Math.floor(Math.min(...ys) * 10) / 10, Math.ceil(Math.max(...ys) * 10) / 10];
  const x = (r: number) => left + ((w - left - right) * r) / maxX;
  const y = (l: number) => top + ((h - top - bottom) * (maxY - l)) / Math.max(1e-9, maxY - minY);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<line x1="${left}" y1="${h - bottom}" x2="${w - right}" y2="${h - bottom}" stroke="black"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${h - bottom}" stroke="black"/>`,
    `<text x="${(left + w - right) / 2}" y="${h - 12}" text-anchor="middle">communication rounds</text>`,
    `<text transform="translate(16 ${(top + h - bottom) / 2}) rotate(-90)" text-anchor="middle">held-out loss (nats/byte)</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const r = Math.round((maxX * i) / 5);
    const l = minY + ((maxY - minY) * i) / 5;
    out.push(
      `<text x="${x(r)}" y="${h - bottom + 16}" text-anchor="middle">${r}</text>`,
      `<text x="${left - 6}" y="${y(l) + 4}" text-anchor="end">${l.toFixed(2)}</text>`,
      `<line x1="${left}" y1="${y(l)}" x2="${w - right}" y2="${y(l)}" stroke="#eee"/>`,
    );
  }
  if (target !== null) {
    out.push(
      `<line x1="${left}" y1="${y(target)}" x2="${w - right}" y2="${y(target)}" stroke="#888" stroke-dasharray="2 3"/>`,
      `<text x="${w - right - 4}" y="${y(target) - 4}" text-anchor="end" fill="#666">target ${target.toFixed(3)}</text>`,
    );
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const d = s.points
      .map((p, j) => `${j ? 'L' : 'M'}${x(p.round).toFixed(1)},${y(p.loss).toFixed(1)}`)
      .join(' ');
    out.push(
      `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<line x1="${w - right + 12}" y1="${top + 12 + i * 18}" x2="${w - right + 36}" y2="${top + 12 + i * 18}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${w - right + 42}" y="${top + 16 + i * 18}">${esc(s.label)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
