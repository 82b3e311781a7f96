// `npm run bench -- NAME [--quick]`: runs bench/NAME.ts, prints one JSON object per figure and, on a terminal, a table.
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import os from 'node:os';
import type { Bench, Figure } from './lib.ts';
import { round } from './lib.ts';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const name = args.find((a) => !a.startsWith('--'));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && f !== 'lib.ts')
  .map((f) => f.replace(/\.ts$/, ''));

if (!name || !existsSync(join(here, `${name}.ts`))) {
  process.stderr.write(
    `usage: npm run bench -- NAME [--quick]\n${name ? `error [E_USAGE]: no benchmark named "${name}"\n` : ''}` +
      `benchmarks: ${available.join(', ') || '(none yet)'}\n`,
  );
  process.exit(2);
}

const figures: Figure[] = [];
const bench = (await import(pathToFileURL(join(here, `${name}.ts`)).href)).default as Bench;
process.stderr.write(
  `bench ${name}${quick ? ' (quick)' : ''} on ${os.cpus()[0]?.model ?? 'unknown CPU'} x${os.cpus().length}, node ${process.version}, ` +
    `load average ${os.loadavg()[0]!.toFixed(2)} (a shared machine's figures move with it)\n`,
);
await bench({
  quick,
  report(figure) {
    const f: Figure = { ...figure, value: round(figure.value) };
    if (f.ref !== undefined) f.ref = round(f.ref);
    if (f.ratio !== undefined) f.ratio = round(f.ratio);
    figures.push(f);
    process.stdout.write(`${JSON.stringify(f)}\n`);
  },
  progress(message) {
    process.stderr.write(`  ${message}\n`);
  },
});

if (process.stdout.isTTY && figures.length > 0) {
  const rows = figures.map((f) => [
    f.name,
    String(f.value),
    f.unit,
    f.ref === undefined ? '' : String(f.ref),
    f.ratio === undefined ? '' : String(f.ratio),
    f.note ?? '',
  ]);
  const header = ['name', 'value', 'unit', 'ref', 'ratio', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  process.stdout.write(
    `\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}\n`,
  );
}
// Benchmarks may leave worker threads or sockets behind; the figures are out, so end here.
process.exit(0);
