// McMahan et al. 2017 on our stack: FedSGD against FedAvg (E local epochs, minibatch B) on SOTU, IID and split by
// president (non-IID), rounds to a target held-out loss, a centralized run at equal computation, and what update
// compression costs. In one process: this measures the algorithm, not the network. Plots and a table go to docs/fedavg/
// (a full run) or a temporary folder (--quick).
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import type { CodecName } from '../aggregation/index.ts';
import {
  buildManifest,
  evalRecords,
  lmWindows,
  loadBuiltin,
  shardDataset,
  type Dataset,
} from '../datasets/index.ts';
import { initBackend, modelConfig } from '../model/index.ts';
import type { Bench } from './lib.ts';
import { withRatio } from './lib.ts';
import { lossPlot } from './fedavg/plot.ts';
import {
  centralized,
  federated,
  finalLoss,
  roundsToTarget,
  stepsFor,
  type Curve,
  type Setting,
} from './fedavg/sim.ts';

const SETTINGS: Setting[] = [
  { name: 'FedSGD', epochs: 1, batch: 'all' },
  { name: 'FedAvg E1 B8', epochs: 1, batch: 8 },
  { name: 'FedAvg E5 B8', epochs: 5, batch: 8 },
];
/**
 * Learning-rate grids (plain SGD), per method and size: FedSGD takes one full-batch step per round, so it wants larger
 * steps. The quick grids are the two best points of the full ones in a first quick run.
 */
const SIZES = {
  quick: { rounds: 10, windows: 16, evalWindows: 128, evalEvery: 2, sgd: [0.25, 0.5], avg: [0.25, 0.5] },
  medium: {
    rounds: 20,
    windows: 16,
    evalWindows: 256,
    evalEvery: 2,
    sgd: [0.25, 0.5, 1],
    avg: [0.1, 0.25, 0.5],
  },
  full: {
    rounds: 60,
    windows: 32,
    evalWindows: 1024,
    evalEvery: 3,
    sgd: [0.25, 0.5, 1],
    avg: [0.1, 0.25, 0.5],
  },
};
type Size = (typeof SIZES)['quick'];
const FRACTION = 0.1;
const SEED = 1;
const CODECS: CodecName[] = ['dense', 'int8', 'topk', 'topk-int8'];

type Split = 'iid' | 'by-president';

function clientsOf(ds: Dataset, split: Split, context: number, windows: number) {
  const plan =
    split === 'iid'
      ? shardDataset(ds, { scheme: 'iid', shards: 43, seed: SEED })
      : shardDataset(ds, { scheme: 'partition', seed: SEED });
  const clients = plan.shards.map((records) => {
    const all = lmWindows(
      records.map((i) => ds.records[i]!),
      context + 1,
      { dropLast: true },
    );
    const n = Math.min(windows, all.length);
    return Array.from({ length: n }, (_, i) => all[Math.floor((i * all.length) / n)]!);
  });
  return { clients, manifest: buildManifest(ds, plan) };
}

const bench: Bench = async ({ quick, report, progress }) => {
  // FEDAVG_SIZE=medium: the size docs/fedavg/ was run at when a full run did not fit the time at hand.
  const sizeName = quick ? 'quick' : process.env.FEDAVG_SIZE === 'medium' ? 'medium' : 'full';
  const size = SIZES[sizeName];
  const backend = (await initBackend({ backend: 'auto' })).name;
  const config = modelConfig('tiny');
  const ds = loadBuiltin('sotu');
  const here = dirname(fileURLToPath(import.meta.url));
  const outDir =
    process.env.FEDAVG_OUT ??
    (quick ? join(tmpdir(), 'fedtune-fedavg-quick') : join(here, '..', 'docs', 'fedavg'));
  mkdirSync(outDir, { recursive: true });
  const common = { config, rounds: size.rounds, fraction: FRACTION, seed: SEED, evalEvery: size.evalEvery };
  const tuned = new Map<string, number>();
  const rows = new Map<string, Record<Split, { lr: number; curve: Curve; rounds: number | null }>>();
  const targets = {} as Record<Split, number>;
  const central = {} as Record<Split, Curve>;
  const started = performance.now();

  for (const split of ['by-president', 'iid'] as Split[]) {
    const { clients, manifest } = clientsOf(ds, split, config.context, size.windows);
    const evalAll = lmWindows(evalRecords(ds, manifest), config.context + 1, { dropLast: true });
    const evalSet = Array.from(
      { length: size.evalWindows },
      (_, i) => evalAll[Math.floor((i * evalAll.length) / size.evalWindows)]!,
    );
    const curves = new Map<string, { lr: number; curve: Curve }>();
    for (const setting of SETTINGS) {
      const grid = setting.name === 'FedSGD' ? size.sgd : size.avg;
      // Below the full size the rates are tuned on the non-IID split only and reused for IID.
      const lrs = sizeName !== 'full' && split === 'iid' ? [tuned.get(setting.name)!] : grid;
      for (const lr of lrs) {
        const curve = await federated({ ...common, clients, evalSet, setting, lr });
        progress(
          `${split} ${setting.name} lr ${lr}: final loss ${finalLoss(curve).toFixed(4)} (${elapsed(started)})`,
        );
        const best = curves.get(setting.name);
        if (!best || finalLoss(curve) < finalLoss(best.curve)) curves.set(setting.name, { lr, curve });
      }
      if (split === 'by-president') tuned.set(setting.name, curves.get(setting.name)!.lr);
    }
    // The paper's target: a level the FedSGD baseline reaches within the run (here the best held-out loss it reaches).
    const target = Math.min(...curves.get('FedSGD')!.curve.points.map((pt) => pt.loss));
    targets[split] = target;
    for (const s of SETTINGS) {
      const { lr, curve } = curves.get(s.name)!;
      if (!rows.has(s.name))
        rows.set(s.name, {} as Record<Split, { lr: number; curve: Curve; rounds: number | null }>);
      rows.get(s.name)![split] = { lr, curve, rounds: roundsToTarget(curve, target) };
    }
    // Centralized minibatch SGD with as many per-example gradients as the best FedAvg setting spent.
    const bestAvg = SETTINGS.slice(1).reduce((a, b) =>
      finalLoss(curves.get(a.name)!.curve) <= finalLoss(curves.get(b.name)!.curve) ? a : b,
    );
    const avg = curves.get(bestAvg.name)!;
    central[split] = await centralized({
      ...common,
      examples: clients.flat(),
      evalSet,
      gradients: avg.curve.gradients,
      batch: 8,
      lr: avg.lr,
    });
    progress(
      `${split} centralized: final loss ${finalLoss(central[split]).toFixed(4)} (${elapsed(started)})`,
    );

    const sgdRounds = rows.get('FedSGD')![split].rounds;
    report({
      name: `fedavg.target_loss_${split}`,
      value: target,
      unit: 'nats/byte',
      note: "FedSGD's best held-out loss",
    });
    for (const s of SETTINGS) {
      const r = rows.get(s.name)![split];
      const key = s.name.replace(/ /g, '_');
      report({
        name: `fedavg.rounds_to_target_${split}_${key}`,
        value: r.rounds ?? Number.NaN,
        unit: 'rounds',
        note: `lr ${r.lr}; ${r.rounds === null ? `not reached in ${size.rounds}` : 'first evaluation at or below the target'}`,
      });
      if (s.name !== 'FedSGD' && r.rounds !== null && sgdRounds !== null)
        report(
          withRatio(
            {
              name: `fedavg.speedup_${split}_${key}`,
              value: sgdRounds / r.rounds,
              unit: 'x',
              note: 'FedSGD rounds / these rounds',
            },
            10,
          ),
        );
      report(
        withRatio(
          {
            name: `fedavg.final_loss_${split}_${key}`,
            value: finalLoss(r.curve),
            unit: 'nats/byte',
            note: 'ref: centralized at equal computation',
          },
          finalLoss(central[split]),
        ),
      );
    }
    const series = SETTINGS.map((s) => ({
      label: `${s.name} (lr ${rows.get(s.name)![split].lr})`,
      points: rows.get(s.name)![split].curve.points,
    }));
    series.push({
      label: 'centralized (same gradients)',
      points: central[split].points,
      dashed: true,
    } as never);
    const file = join(outDir, `${split}.svg`);
    writeFileSync(
      file,
      lossPlot(`SOTU byte LM, ${split}: held-out loss vs rounds (C = ${FRACTION})`, series, target),
    );
    progress(`wrote ${file}`);
  }

  // Compression: the best FedAvg setting on the non-IID split, the same rounds, each codec (top-k with error feedback).
  const { clients, manifest } = clientsOf(ds, 'by-president', config.context, size.windows);
  const evalAll = lmWindows(evalRecords(ds, manifest), config.context + 1, { dropLast: true });
  const evalSet = Array.from(
    { length: size.evalWindows },
    (_, i) => evalAll[Math.floor((i * evalAll.length) / size.evalWindows)]!,
  );
  const bestName = SETTINGS.slice(1).reduce((a, b) =>
    finalLoss(rows.get(a.name)!['by-president'].curve) <= finalLoss(rows.get(b.name)!['by-president'].curve)
      ? a
      : b,
  );
  const denseRun = rows.get(bestName.name)!['by-president'];
  const codecRows = [
    { codec: 'dense' as CodecName, bytes: denseRun.curve.bytesPerRound, loss: finalLoss(denseRun.curve) },
  ];
  for (const codec of CODECS.slice(1)) {
    const curve = await federated({ ...common, clients, evalSet, setting: bestName, lr: denseRun.lr, codec });
    codecRows.push({ codec, bytes: curve.bytesPerRound, loss: finalLoss(curve) });
    progress(
      `codec ${codec}: ${Math.round(curve.bytesPerRound)} B/round, final loss ${finalLoss(curve).toFixed(4)} (${elapsed(started)})`,
    );
  }
  const dense = codecRows[0]!;
  for (const c of codecRows) {
    report(
      withRatio(
        {
          name: `fedavg.bytes_per_round_${c.codec}`,
          value: c.bytes,
          unit: 'B',
          note: `${bestName.name}, by-president; ref: dense`,
        },
        dense.bytes,
      ),
    );
    report(
      withRatio(
        {
          name: `fedavg.final_loss_${c.codec}`,
          value: c.loss,
          unit: 'nats/byte',
          note: `after ${size.rounds} rounds; ref: dense`,
        },
        dense.loss,
      ),
    );
  }

  const table = paperTable({
    size,
    sizeName,
    rows,
    targets,
    central,
    codecRows,
    bestName: bestName.name,
    backend,
  });
  process.stderr.write(`\n${table}\n`);
  writeFileSync(join(outDir, 'results.md'), table);
  progress(`wrote ${join(outDir, 'results.md')} (${elapsed(started)})`);
};

function elapsed(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(0)} s`;
}

/** Table 2 of the paper, rounds to target and speed-up per split, then losses against centralized, then codecs. */
function paperTable(p: {
  size: Size;
  sizeName: string;
  rows: Map<string, Record<Split, { lr: number; curve: Curve; rounds: number | null }>>;
  targets: Record<Split, number>;
  central: Record<Split, Curve>;
  codecRows: { codec: CodecName; bytes: number; loss: number }[];
  bestName: string;
  backend: string;
}): string {
  const { size, rows, targets, central } = p;
  const sgd = rows.get('FedSGD')!;
  const cell = (name: string, split: Split) => {
    const r = rows.get(name)![split];
    if (r.rounds === null) return `> ${size.rounds} (—)`;
    const base = sgd[split].rounds;
    return `${r.rounds} (${base === null ? '—' : `${(base / r.rounds).toFixed(1)}×`})`;
  };
  const lines = [
    `# FedSGD vs FedAvg on SOTU (byte-level LM)`,
    '',
    `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'} x${os.cpus().length} (shared), node ${process.version}, tfjs ${p.backend} backend.`,
    `Model \`tiny\` (d32, 1 layer, context 32); 43 clients (one per president, or 43 IID shards), ${size.windows} windows of 33 bytes each;`,
    `C = ${FRACTION} (${Math.max(1, Math.round(FRACTION * 43))} clients a round); plain SGD; ${size.rounds} rounds; held-out loss on ${size.evalWindows} evenly spaced eval windows every ${size.evalEvery} rounds.`,
    `Learning rates: best final loss on the grids FedSGD {${size.sgd.join(', ')}}, FedAvg {${size.avg.join(', ')}}${p.sizeName !== 'full' ? ' (tuned on by-president, reused for IID)' : ', per split'}; size ${p.sizeName}.`,
    `Target (as the paper: a level the FedSGD baseline reaches): FedSGD's best held-out loss — IID ${targets.iid.toFixed(3)}, by-president ${targets['by-president'].toFixed(3)} nats/byte.`,
    '',
    '| method | E | B | u | lr (IID / pres.) | IID rounds (speed-up) | by-president rounds (speed-up) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...SETTINGS.map((s) => {
      const u = stepsFor(s, size.windows);
      return `| ${s.name.split(' ')[0]} | ${s.epochs} | ${s.batch === 'all' ? '∞' : s.batch} | ${u} | ${rows.get(s.name)!.iid.lr} / ${rows.get(s.name)!['by-president'].lr} | ${cell(s.name, 'iid')} | ${cell(s.name, 'by-president')} |`;
    }),
    '',
    '| final held-out loss | IID | by-president |',
    '| --- | --- | --- |',
    ...SETTINGS.map(
      (s) =>
        `| ${s.name} | ${finalLoss(rows.get(s.name)!.iid.curve).toFixed(4)} | ${finalLoss(rows.get(s.name)!['by-president'].curve).toFixed(4)} |`,
    ),
    `| centralized SGD, B 8, same gradient computations as the best FedAvg | ${finalLoss(central.iid).toFixed(4)} | ${finalLoss(central['by-president']).toFixed(4)} |`,
    '',
    `Update compression (${p.bestName}, by-president, ${size.rounds} rounds; top-k keeps 1% with error feedback on each client):`,
    '',
    '| codec | bytes per round | vs dense | final loss | vs dense |',
    '| --- | --- | --- | --- | --- |',
    ...p.codecRows.map(
      (c) =>
        `| ${c.codec} | ${Math.round(c.bytes)} | ${c.codec === 'dense' ? '—' : `${(p.codecRows[0]!.bytes / c.bytes).toFixed(1)}× fewer`} | ${c.loss.toFixed(4)} | ${(((c.loss - p.codecRows[0]!.loss) / p.codecRows[0]!.loss) * 100).toFixed(1)}% |`,
    ),
    '',
  ];
  return lines.join('\n');
}

export default bench;
