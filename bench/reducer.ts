// Reducer throughput (blocks/s, protocol calls/s folded) and state memory per 10,000 proposals, beside the payload decoder alone.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { performance } from 'node:perf_hooks';
import {
  decodePayload,
  deriveNetworkId,
  encodePayload,
  initialState,
  reduceBlocks,
  type ChainBlock,
  type FedtuneCall,
  type Hex32,
} from '../pallet-bindings/index.ts';
import type { Bench } from './lib.ts';
import { memcpyGBs, timeIt, withRatio } from './lib.ts';

const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const BOB = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const CHARLIE = '5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y';
const DATASET = `0x${'d1'.repeat(32)}` as Hex32;
const hash = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;

function blockOf(number: number, calls: [string, Hex32 | null, FedtuneCall][]): ChainBlock {
  return {
    number,
    hash: hash(number),
    parentHash: hash(number - 1),
    extrinsics: calls.map(([signer, network, call], index) => ({
      index,
      signer,
      ok: true,
      call: { kind: 'remark', data: encodePayload({ network, call }), ok: true },
    })),
  };
}

/** A DAO at work: every block one round proposal and three votes (on the proposal two blocks back). */
function chain(blocks: number): { blocks: ChainBlock[]; calls: number; proposals: number } {
  const net = deriveNetworkId(hash(1), 0, 0);
  const out: ChainBlock[] = [
    blockOf(1, [
      [
        ALICE,
        null,
        {
          type: 'createNetwork',
          name: 'bench',
          members: [ALICE, BOB, CHARLIE],
          quorum: { numerator: 2, denominator: 3 },
          votingPeriod: 10,
          coordinators: [ALICE],
        },
      ],
    ]),
    blockOf(2, [
      [
        ALICE,
        net,
        {
          type: 'registerDataset',
          name: 'd',
          root: DATASET,
          records: 1000,
          shards: 10,
          bytes: 1e6,
          license: 'CC0-1.0',
          source: 'bench',
          tokenizer: 'byte-v1',
          manifestUri: 'http://127.0.0.1/m',
        },
      ],
    ]),
  ];
  let calls = 2;
  let proposals = 0;
  for (let n = 3; n < blocks + 3; n++) {
    const c: [string, Hex32 | null, FedtuneCall][] = [
      [
        BOB,
        net,
        {
          type: 'proposeRound',
          kind: 'Pretrain',
          baseCheckpoint: null,
          dataset: DATASET,
          model: { config: '{"layers":4,"dim":128,"heads":4,"vocab":256}' },
          hyperParams: {
            localSteps: 20,
            batchSize: 16,
            learningRate: 3e-4,
            optimiser: 'adamw',
            fedProxMu: 0.01,
            aggregator: 'fedavg',
            aggregatorOptions: '{}',
            updateEncoding: 'int8',
          },
          rounds: 5,
          minWorkers: 2,
          maxWorkers: 16,
          roundDeadline: 600,
          rewardPerRound: '1000000000000',
        },
      ],
    ];
    proposals += 1;
    if (n >= 5) {
      for (const voter of [ALICE, BOB, CHARLIE])
        c.push([voter, net, { type: 'vote', proposal: n - 5, aye: voter !== CHARLIE }]);
    }
    calls += c.length;
    out.push(blockOf(n, c));
  }
  return { blocks: out, calls, proposals };
}

function gcFunction(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

const bench: Bench = async (ctx) => {
  const ref = await memcpyGBs(64 * 1024 * 1024);
  ctx.report({
    name: 'memory copy',
    value: ref,
    unit: 'GB/s',
    note: 'machine reference: Float32Array.set of 64 MB',
  });

  const n = ctx.quick ? 2_000 : 10_000;
  ctx.progress(`building ${n} blocks`);
  const { blocks, calls } = chain(n);
  const payloads = blocks.flatMap((b) =>
    b.extrinsics.map((e) => (e.call.kind === 'remark' ? e.call.data : new Uint8Array())),
  );

  const decodeSeconds = await timeIt(
    () => {
      for (const p of payloads) decodePayload(p);
    },
    { minMs: ctx.quick ? 200 : 1000, minRuns: 1 },
  );
  const decodeRate = payloads.length / decodeSeconds;
  ctx.report({
    name: 'payload decode alone',
    value: decodeRate,
    unit: 'calls/s',
    note: `${payloads.length} payloads, SCALE via @polkadot/types`,
  });

  let final = initialState();
  const seconds = await timeIt(
    () => {
      final = reduceBlocks(initialState(), blocks);
    },
    { minMs: ctx.quick ? 200 : 1000, minRuns: 1 },
  );
  const note = `${blocks.length} blocks, ${calls} calls (1 proposeRound + 3 votes per block), 3 members`;
  ctx.report({ name: 'reducer: blocks folded', value: blocks.length / seconds, unit: 'blocks/s', note });
  ctx.report(
    withRatio(
      {
        name: 'reducer: protocol calls folded',
        value: calls / seconds,
        unit: 'calls/s',
        note: `${note}; ref = decode alone`,
      },
      decodeRate,
    ),
  );
  const proposals = Object.values(final.networks)[0]!.proposals.length;

  // Memory: the heap a state with 10,000 proposals holds, measured after full collections.
  const gc = gcFunction();
  ctx.progress('measuring state memory');
  const { blocks: many } = chain(10_000);
  gc();
  const before = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  let big = reduceBlocks(initialState(), many);
  const buildMs = performance.now() - t0;
  gc();
  const after = process.memoryUsage().heapUsed;
  const count = Object.values(big.networks)[0]!.proposals.length;
  ctx.report({
    name: 'state memory per 10,000 proposals',
    value: ((after - before) / 1e6) * (10_000 / count),
    unit: 'MB',
    note: `${count} decided round proposals with 3 votes each; heapUsed after gc; folded in ${Math.round(buildMs)} ms (${proposals} in the timed run)`,
  });
  big = initialState();
  void big;
};

export default bench;
