// A test double of a coordinator that runs one round by hand (open, updates signed by real worker keys, aggregate,
// store, publish, commit) and can cheat in one way: leave an accepted update out of the aggregate, scale one, or commit
// a lower held-out loss than the checkpoint has. What it publishes is always the honest record of what it accepted.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { encodeUpdate } from '../../aggregation/index.ts';
import { openStore } from '../../checkpoints/index.ts';
import { httpRoutes, publishRound, type UpdateRecord } from '../../coordinator/index.ts';
import { datasetForManifest, type DatasetManifest } from '../../datasets/index.ts';
import { modelConfig, paramSpecs, validateConfig } from '../../model/index.ts';
import {
  fromHex,
  merkleRoot,
  submit,
  toHex,
  updateLeafHash,
  updatesTree,
  type Hex32,
} from '../../pallet-bindings/index.ts';
import { updateMessage } from '../../proto/index.ts';
import {
  deriveAggregate,
  evaluateHeldOut,
  noiseSeed,
  proposalFit,
  proposalSpec,
  proposalStrategy,
  roundCheckpoint,
  seededBase,
} from '../../verify/index.ts';
import { approveProposal, proposal, type Fixture } from '../rounds/helpers.ts';

export type Cheat = 'none' | 'omit' | 'scale' | 'eval';

const EVAL_EXAMPLES = 32;

/** Runs a one-round proposal as a cheating coordinator; resolves with the proposal id and a stop for its server. */
export async function dishonestRound(
  f: Fixture,
  cheat: Cheat,
): Promise<{ id: number; close(): Promise<void> }> {
  const id = await approveProposal(f, { rounds: 1, minWorkers: 2, maxWorkers: 2, rewardPerRound: '0' });
  await submit(f.client, {
    signer: f.coordinator,
    network: f.network,
    calls: [{ type: 'openRound', proposal: id, coordinatorEndpoint: 'ws://127.0.0.1:9' }],
  });
  const p = await proposal(f, id);
  const store = await openStore(join(f.dir, `cheat-${id}`));
  const manifest = JSON.parse(readFileSync(join(f.dir, 'moby.json'), 'utf8')) as DatasetManifest;
  const server = createServer((req, res) => {
    void httpRoutes(store, new Map())(req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const config = validateConfig(modelConfig('tiny'));
  const base = seededBase({ config, network: f.network, proposal: id, parent: null });
  await store.put(base.bytes, base.fields);
  const { localSteps, batchSize } = p.round.hyperParams;
  const samples = localSteps * batchSize;
  // Two workers' updates: small deterministic deltas, signed by the workers' own keys.
  const updates: UpdateRecord[] = f.workers.slice(0, 2).map((w, k) => {
    let seed = 17 + k;
    const delta = paramSpecs(config).map((s) => ({
      name: s.name,
      shape: s.shape,
      data: Float32Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return (seed / 2 ** 31 - 0.5) * 1e-3;
      }),
    }));
    const payload = encodeUpdate(delta, { codec: 'dense' });
    const payloadSha256 = new Uint8Array(createHash('sha256').update(payload).digest());
    const shards = [3 * k, 3 * k + 1, 3 * k + 2];
    const signature = w.sign(
      updateMessage({
        network: f.network,
        coordinator: f.coordinator.address,
        proposal: id,
        round: 0,
        samples,
        payloadBytes: payload.length,
        base: base.id,
        codec: 'dense',
        shards,
        payloadSha256,
      }),
    );
    return {
      t: 'update',
      proposal: id,
      round: 0,
      account: w.address,
      taskId: `${id}-0-0-${k}`,
      samples,
      shards,
      trainLoss: 4,
      payloadSha256,
      updateHash: updateLeafHash({ proposal: id, round: 0, account: w.address, samples, payloadSha256 }),
      signature,
      payload,
    };
  });

  const { strategy, maxValues } = proposalStrategy(proposalSpec(p), base.model, {
    noiseSeed: noiseSeed(f.network, id, p.openedAt ?? 0),
  });
  const stateBefore = strategy.exportState();
  // The cheat: what goes into the aggregate is not what was accepted.
  let aggregated = updates;
  if (cheat === 'omit') aggregated = updates.slice(1);
  if (cheat === 'scale') {
    const [first, ...rest] = updates;
    const scaled = new Uint8Array(first!.payload);
    // Dense payloads end in the float32 values: tripling them scales the update.
    const values = paramSpecs(config).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
    const view = new DataView(scaled.buffer, scaled.length - 4 * values);
    for (let i = 0; i < values; i++) view.setFloat32(4 * i, 3 * view.getFloat32(4 * i, true), true);
    aggregated = [{ ...first!, payload: scaled }, ...rest];
  }
  const derived = deriveAggregate({
    strategy,
    round: 0,
    fit: proposalFit(p),
    codec: 'dense',
    maxValues,
    updates: aggregated,
  });
  const checkpoint = roundCheckpoint({
    model: base.model,
    weights: derived.result.weights,
    config,
    base: base.id,
    proposal: id,
    round: 0,
    stateHash: derived.stateHash,
  });
  await store.put(checkpoint.bytes, checkpoint.fields);
  const evaluation = await evaluateHeldOut(base.model, datasetForManifest(manifest), manifest, {
    maxExamples: EVAL_EXAMPLES,
  });
  await publishRound(store, {
    network: f.network,
    coordinator: f.coordinator.address,
    proposal: id,
    round: 0,
    base: base.id,
    codec: 'dense',
    stateBefore,
    stateAfter: derived.state,
    updates,
  });
  const contributors = updates.map((u) => ({ account: u.account, samples: u.samples, shards: u.shards }));
  const shardLeaves = contributors
    .flatMap((c) => c.shards)
    .sort((a, b) => a - b)
    .map((s) => fromHex(manifest.shards[s]!.leaf));
  await submit(f.client, {
    signer: f.coordinator,
    network: f.network,
    calls: [
      {
        type: 'finalizeRound',
        proposal: id,
        round: 0,
        checkpoint: { id: checkpoint.id as Hex32, bytes: checkpoint.bytes.length, uri: url },
        updatesRoot: updatesTree(updates).root,
        contributors: [...contributors].sort((a, b) => (a.account < b.account ? -1 : 1)),
        datasetShardsRoot: toHex(merkleRoot(shardLeaves)),
        metrics: {
          trainLoss: 4,
          evalLoss: cheat === 'eval' ? evaluation.loss - 0.5 : evaluation.loss,
          extra: [{ name: 'evalExamples', value: evaluation.examples }],
        },
      },
    ],
  });
  strategy.dispose();
  return {
    id,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
