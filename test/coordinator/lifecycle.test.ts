// The engine's life-cycle steps without a chain: task assignment, update acceptance, rewards, event-driven waits.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { createStrategy, encodeUpdate } from '../../aggregation/index.ts';
import { acceptUpdate, checkUpdate, MAX_TRAIN_LOSS } from '../../coordinator/accept.ts';
import {
  assignable,
  assignSlots,
  eligibleOrder,
  initialSlots,
  releaseTask,
  slotCap,
  slotShards,
  taskFrame,
  taskSamples,
  type Assignment,
} from '../../coordinator/assign.ts';
import { Signal, sleep } from '../../coordinator/clock.ts';
import { splitRewards } from '../../coordinator/rewards.ts';
import type { UploadedUpdate } from '../../coordinator/server.ts';
import { ManualClock } from './manual-clock.ts';

const assignment = (slots: number, shardCount = 6): Assignment => ({
  proposal: 3,
  round: 1,
  attempt: 0,
  slots,
  shardCount,
  tasks: new Map(),
  released: new Set(),
});

describe('coordinator life cycle: task assignment', () => {
  it('orders candidates the same way whatever order they connected in', () => {
    const a = eligibleOrder('net', 3, 1, ['a', 'b', 'c', 'd']);
    expect(eligibleOrder('net', 3, 1, ['d', 'c', 'b', 'a'])).to.deep.equal(a);
    expect(a.slice().sort()).to.deep.equal(['a', 'b', 'c', 'd']);
  });

  it('splits every shard over the slots once, rotating with the round', () => {
    for (const round of [0, 1, 5]) {
      const all = [0, 1, 2].flatMap((s) => slotShards(s, 3, round, 7)).sort((x, y) => x - y);
      expect(all).to.deep.equal([0, 1, 2, 3, 4, 5, 6]);
    }
    expect(slotShards(0, 3, 0, 7)).to.not.deep.equal(slotShards(0, 3, 1, 7));
  });

  it('caps slots at maxWorkers plus over-selection and the shard count, with room up to minWorkers', () => {
    expect(slotCap(4, 0.25, 100)).to.equal(5);
    expect(slotCap(4, 0.25, 3)).to.equal(3);
    expect(initialSlots(1, 3, 5)).to.equal(3);
    expect(initialSlots(9, 2, 5)).to.equal(5);
  });

  it('offers tasks to registered workers and the network coordinators (sub-coordinators) only, never to a barred one', () => {
    const worker = (account: string) => ({
      account,
      capabilities: { backend: 'wasm', device: 'cpu', memoryBytes: 1 },
      endpoint: null,
      block: 1,
    });
    const net = {
      workers: { w1: worker('w1'), w2: worker('w2'), w3: worker('w3') },
      barredWorkers: { w2: { dispute: 0, code: 'E_WORK_MISMATCH', block: 9 } },
      coordinators: ['c1', 'c2'],
      barredCoordinators: { c2: { dispute: 1, code: 'E_AGGREGATE_MISMATCH', block: 9 } },
    } as unknown as Parameters<typeof assignable>[0];
    expect(assignable(net, ['w3', 'c2', 'w2', 'stranger', 'c1', 'w1'])).to.deep.equal(['w3', 'c1', 'w1']);
    expect(assignable(undefined, ['w1'])).to.deep.equal([]);
  });

  it('gives free slots to new candidates only, and a released slot to the next idle one', () => {
    const a = assignment(2);
    const first = assignSlots(a, ['w1', 'w2', 'w3']);
    expect(first.map((t) => t.account)).to.deep.equal(['w1', 'w2']);
    expect(first.map((t) => t.taskId)).to.deep.equal(['3-1-0-0', '3-1-0-1']);
    expect(assignSlots(a, ['w1', 'w2', 'w3'])).to.deep.equal([]);
    const released = releaseTask(a, 'w1')!;
    const handedOn = assignSlots(a, ['w1', 'w2', 'w3']);
    expect(handedOn.map((t) => t.account)).to.deep.equal(['w3']);
    expect(handedOn[0]!.shards).to.deep.equal(released.shards);
    expect(a.released.has('w1')).to.equal(true);
  });

  it('builds the task from the round config: the worker trains exactly the strategy fit', () => {
    const fit = {
      localSteps: 5,
      batchSize: 4,
      learningRate: 0.01,
      optimiser: 'sgd' as const,
      fedProxMu: 0.1,
      gradClipNorm: 2,
      warmupSteps: 1,
      schedule: 'constant' as const,
      minLrRatio: 0.5,
    };
    const frame = taskFrame({
      task: { account: 'w1', taskId: '3-1-0-0', shards: [0, 3] },
      proposal: 3,
      round: 1,
      base: { id: '0xab', bytes: 10, url: 'http://127.0.0.1:1' },
      datasetRoot: '0xcd',
      modelJson: '{}',
      fit,
      updateEncoding: { codec: 'dense' },
      deadlineMs: 1,
    });
    const hyper = JSON.parse(frame.hyperparamsJson) as Record<string, unknown>;
    expect(hyper).to.include(fit);
    expect(hyper.seed).to.be.a('number');
    expect(taskSamples(fit)).to.equal(20);
  });
});

describe('coordinator life cycle: update acceptance', () => {
  const weights = [{ name: 'w', shape: [4], data: new Float32Array([1, 2, 3, 4]) }];
  const payload = encodeUpdate([{ name: 'w', shape: [4], data: new Float32Array([0.1, 0, 0, -0.1]) }], {
    codec: 'dense',
  });
  const sha = new Uint8Array(createHash('sha256').update(payload).digest());
  const upload = (over: Partial<UploadedUpdate['begin']> = {}): UploadedUpdate => ({
    account: 'w1',
    payload,
    begin: {
      taskId: '3-1-0-0',
      proposal: 3,
      round: 1,
      base: '0xab',
      codec: 'dense',
      samples: 20,
      shards: [0, 2, 4],
      trainLoss: 2.5,
      payloadSha256: sha,
      payloadBytes: payload.length,
      signature: new Uint8Array(64),
      ...over,
    },
  });
  const check = (update: UploadedUpdate, accepted = new Map<string, unknown>()) => {
    const a = assignment(2);
    assignSlots(a, ['w1']);
    const strategy = createStrategy({ name: 'fedavg' }, weights, { backend: 'js' });
    strategy.configureRound(1);
    return acceptUpdate({
      assignment: a,
      closing: false,
      accepted,
      maxWorkers: 2,
      samples: 20,
      strategy,
      codec: 'dense',
      maxValues: 4,
      update,
    });
  };

  it('accepts an update that matches its task, with samples derived from the task', () => {
    const v = check(upload({ shards: assignSlotsShards() }));
    expect(v.ok, JSON.stringify(v)).to.equal(true);
    if (v.ok) expect(v.record.samples).to.equal(20);
  });

  const codeOf = (v: ReturnType<typeof check>) => (v.ok ? 'ok' : v.code);
  it('refuses a claim of more samples than the task, a loss out of bounds, other shards, a second update', () => {
    const shards = assignSlotsShards();
    expect(codeOf(check(upload({ shards, samples: 2 ** 53 - 1 })))).to.equal('E_SAMPLES_MISMATCH');
    expect(codeOf(check(upload({ shards, trainLoss: 1e308 })))).to.equal('E_UPDATE_BOUNDS');
    expect(codeOf(check(upload({ shards, trainLoss: MAX_TRAIN_LOSS + 1 })))).to.equal('E_UPDATE_BOUNDS');
    expect(codeOf(check(upload({ shards, trainLoss: -1 })))).to.equal('E_UPDATE_BOUNDS');
    expect(codeOf(check(upload({ shards, trainLoss: NaN })))).to.equal('E_UPDATE_BOUNDS');
    expect(codeOf(check(upload({ shards: [1] })))).to.equal('E_WRONG_SHARDS');
    expect(codeOf(check(upload({ shards, taskId: '3-1-0-1' })))).to.equal('E_UNKNOWN_TASK');
    expect(codeOf(check(upload({ shards, round: 2 })))).to.equal('E_ROUND_CLOSED');
    expect(codeOf(check(upload({ shards }), new Map([['w1', 1]])))).to.equal('E_DUPLICATE_UPDATE');
  });

  function assignSlotsShards(): number[] {
    const a = assignment(2);
    return assignSlots(a, ['w1'])[0]!.shards;
  }
});

describe('coordinator life cycle: checking updates', () => {
  it('checks each update as accept would, through one reused buffer, and leaves the aggregate untouched', () => {
    const w = [{ name: 'w', shape: [3], data: new Float32Array(3) }];
    for (const name of ['median', 'fedavg'] as const) {
      const strategy = createStrategy({ name, options: { maxNorm: 10 } }, w, { backend: 'js' });
      strategy.configureRound(0);
      const check = (account: string, data: number[]) =>
        checkUpdate(strategy, {
          account,
          samples: 1,
          payload: encodeUpdate([{ name: 'w', shape: [3], data: new Float32Array(data) }], {
            codec: 'dense',
          }),
          codec: 'dense',
          maxValues: 3,
        });
      expect(check('w0', [1, -1, 0]), name).to.deep.equal({ ok: true });
      expect(check('w1', [2, -2, 0.5]), name).to.deep.equal({ ok: true });
      expect(check('w3', [30, 0, 0]), name).to.include({ ok: false, code: 'E_UPDATE_NORM' });
      // Nothing was folded in: the round still has no update to aggregate.
      expect(() => strategy.aggregate(), name).to.throw(/no accepted updates/);
    }
  });
});

describe('coordinator life cycle: rewards', () => {
  it('splits in proportion to samples, never more than the round reward, never to the payer', () => {
    const out = splitRewards({ total: 1000n, payer: 'c' }, [
      { account: 'a', samples: 1, shards: [0] },
      { account: 'b', samples: 2, shards: [1] },
      { account: 'c', samples: 3, shards: [2] },
    ]);
    expect(out).to.deep.equal([
      { dest: 'a', value: '166' },
      { dest: 'b', value: '333' },
    ]);
    const sum = out.reduce((n, r) => n + BigInt(r.value), 0n);
    expect(sum <= 1000n).to.equal(true);
    expect(
      splitRewards({ total: 0n, payer: 'c' }, [{ account: 'a', samples: 1, shards: [0] }]),
    ).to.deep.equal([]);
  });
});

describe('coordinator life cycle: injected time', () => {
  it('a signal wakes a waiter early, keeps a wake that came before the wait, and times out on the clock', async () => {
    const clock = new ManualClock();
    const signal = new Signal(clock);
    let woke = false;
    const waiting = signal.wait(clock.now() + 60_000).then(() => (woke = true));
    await Promise.resolve();
    expect(woke).to.equal(false);
    signal.wake();
    await waiting;
    signal.wake();
    await signal.wait(clock.now() + 60_000); // resolves at once: the wake was kept
    let timedOut = false;
    const timed = signal.wait(clock.now() + 1000).then(() => (timedOut = true));
    clock.advance(999);
    await Promise.resolve();
    expect(timedOut).to.equal(false);
    clock.advance(1);
    await timed;
    expect(clock.pending()).to.equal(0);
  });

  it('a sleep ends when the coordinator stops', async () => {
    const clock = new ManualClock();
    const stop = new AbortController();
    const slept = sleep(clock, 30_000, stop.signal);
    stop.abort();
    await slept;
    expect(clock.pending()).to.equal(0);
  });
});
