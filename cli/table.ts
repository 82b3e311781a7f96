// Plain-text tables and key/value blocks for the commands' human-readable output.

/** Columns padded to their widest cell, a rule under the header. */
export function table(header: string[], rows: (string | number)[][]): string {
  if (rows.length === 0) return '(none)';
  const cells = rows.map((r) => r.map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

/** `key: value` lines with the keys aligned. */
export function fields(pairs: [string, string | number][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${v}`).join('\n');
}

/** A long hex or address shortened for a table column; --json always prints it whole. */
export function short(value: string, keep = 8): string {
  return value.length > keep * 2 + 1 ? `${value.slice(0, keep)}…${value.slice(-keep + 2)}` : value;
}
