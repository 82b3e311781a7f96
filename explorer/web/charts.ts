// Charts on uPlot: a round's losses (train, held-out, the base) and a coordinator's figures over time.
import uPlot from 'uplot';

/** The chart instance hangs on its element, so a test (or a curious person in devtools) can read what was drawn. */
export type ChartElement = HTMLElement & { uplot?: uPlot };

const COLORS = ['#2b6cb0', '#c05621', '#2f855a', '#6b46c1', '#b83280'];

function width(el: HTMLElement): number {
  return Math.max(320, Math.min(900, el.clientWidth || 640));
}

export interface LossPoint {
  /** 0-based round number. */
  round: number;
  trainLoss: number;
  evalLoss: number;
}

/**
 * One point per finalized round: training loss, held-out loss, and the base model's held-out loss (round 0
 * measures it before training) as a flat dashed line to compare against.
 */
export function lossChart(el: ChartElement, points: LossPoint[], base: number | null): () => void {
  const xs = points.map((p) => p.round);
  const data: uPlot.AlignedData = [
    xs,
    points.map((p) => p.trainLoss),
    points.map((p) => p.evalLoss),
    ...(base === null ? [] : [xs.map(() => base)]),
  ];
  const series: uPlot.Series[] = [
    { label: 'round' },
    { label: 'train loss', stroke: COLORS[0], width: 2, points: { show: true, size: 6 } },
    { label: 'held-out loss', stroke: COLORS[1], width: 2, points: { show: true, size: 6 } },
    ...(base === null
      ? []
      : [{ label: 'base (held-out)', stroke: '#718096', dash: [6, 4], points: { show: false } }]),
  ];
  const chart = new uPlot(
    {
      width: width(el),
      height: 260,
      series,
      scales: { x: { time: false } },
      axes: [
        { label: 'round', values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? String(t) : '')) },
        { label: 'loss' },
      ],
    },
    data,
    el,
  );
  el.uplot = chart;
  el.dataset.points = String(xs.length);
  return () => chart.destroy();
}

export interface TimeSeries {
  label: string;
  values: (number | null)[];
}

/** Figures sampled over time (x in seconds since the epoch, as uPlot's time axis wants). */
export function timeChart(
  el: ChartElement,
  title: string,
  times: number[],
  series: TimeSeries[],
): () => void {
  const chart = new uPlot(
    {
      title,
      width: Math.min(width(el), 440),
      height: 180,
      series: [
        {},
        ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2 })),
      ],
      scales: { x: { time: true } },
    },
    [times, ...series.map((s) => s.values)],
    el,
  );
  el.uplot = chart;
  el.dataset.points = String(times.length);
  return () => chart.destroy();
}
