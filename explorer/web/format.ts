// Formatting for the pages: HTML escaping (everything from chain is data, never markup), numbers, hashes, links.

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** 0x1234…abcd, with the full value on hover. */
export function short(hex: string | null | undefined, keep = 6): string {
  if (!hex) return '<span class="muted">—</span>';
  const text = hex.length > 2 * keep + 3 ? `${hex.slice(0, keep + 2)}…${hex.slice(-keep)}` : hex;
  return `<code title="${esc(hex)}">${esc(text)}</code>`;
}

export function loss(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(4);
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(2)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** Planck as units of 10^12 (the dev chain's token decimals), exact to the planck in the title. */
export function planck(amount: string | bigint): string {
  const value = BigInt(amount);
  const whole = value / 10n ** 12n;
  const frac = (value % 10n ** 12n).toString().padStart(12, '0').replace(/0+$/, '');
  return `<span title="${esc(value.toString())} planck">${esc(whole.toString())}${frac ? `.${esc(frac.slice(0, 6))}` : ''} UNIT</span>`;
}

export function account(a: string | null | undefined): string {
  if (!a) return '<span class="muted">—</span>';
  return `<a href="#/worker/${esc(a)}">${short(a, 6)}</a>`;
}

export function checkpointLink(id: string | null | undefined): string {
  if (!id) return '<span class="muted">none (from scratch)</span>';
  return `<a href="#/checkpoint/${esc(id)}">${short(id)}</a>`;
}

export function table(headers: string[], rows: string[][], attrs = ''): string {
  if (rows.length === 0) return `<p class="muted" ${attrs}>none</p>`;
  return `<table ${attrs}><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export function fields(rows: [string, string][]): string {
  return `<dl class="fields">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

export function status(s: string): string {
  return `<span class="status status-${esc(s)}">${esc(s)}</span>`;
}
