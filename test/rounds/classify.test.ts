// A classifier fine-tune through the real coordinator and workers on the dev chain: a tiny language model pre-trained on
// Moby Dick, certified, then LoRA adapters and a new head trained on spam-assassin dealt to shards with Dirichlet label
// skew. The committed accuracy is on chain and beats always answering the held-out split's most common label.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import type { CoordinatorEvent } from '../../coordinator/index.ts';
import {
  buildManifest,
  heldOutExamples,
  loadDataset,
  registerDatasetFields,
  shardDataset,
} from '../../datasets/index.ts';
import { modelConfig } from '../../model/index.ts';
import { submit, type Hex32 } from '../../pallet-bindings/index.ts';
import {
  approveProposal,
  proposal,
  setUp,
  startRunning,
  verifyOn,
  waitFor,
  type Fixture,
} from './helpers.ts';

const EVAL_EXAMPLES = 256;
const LORA = { rank: 8, alpha: 16, targets: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] };

describe('rounds: a classifier fine-tune (LoRA + head) on spam-assassin with label skew', function () {
  this.timeout(600_000);
  let f: Fixture;
  let running: Awaited<ReturnType<typeof startRunning>> | undefined;
  const events = new EventEmitter();
  const onCoordinator = (fn: (e: CoordinatorEvent) => void) => events.on('c', fn);
  let lmCheckpoint: Hex32 | null = null;
  let spamRoot: Hex32 | null = null;

  before(async () => {
    f = await setUp('classify');
  });
  after(async () => {
    await running?.close();
    await f?.close();
  });

  it("commits held-out accuracy above the majority-class rate, from a language model's certified checkpoint", async () => {
    running = await startRunning(f, { evalExamples: EVAL_EXAMPLES, onEvent: (e) => events.emit('c', e) });
    const closed: Extract<CoordinatorEvent, { type: 'roundClosed' }>[] = [];
    onCoordinator((e) => e.type === 'roundClosed' && closed.push(e));

    // A language model, pre-trained on Moby Dick for 150 steps and certified by Alice (the network's one member): after 20
    // steps its trunk was near random, and the classifier fell back to the majority label in about half the runs.
    const pretrain = await approveProposal(
      f,
      { rounds: 1 },
      { localSteps: 150, batchSize: 8, learningRate: 0.01 },
    );
    await waitFor(onCoordinator, (e) => e.type === 'finalizeRound' && e.proposal === pretrain, 300_000);
    const lm = (await proposal(f, pretrain)).finalized[0]!;
    lmCheckpoint = lm.checkpoint.id as Hex32;
    await submit(f.client, {
      signer: f.alice,
      network: f.network,
      calls: [{ type: 'attest', checkpoint: lm.checkpoint.id, evalLoss: lm.metrics.evalLoss, verdict: true }],
    });

    // spam-assassin, each label's e-mails dealt to 4 shards by Dirichlet(0.5) proportions.
    const spam = loadDataset({ name: 'spam-assassin' });
    const manifest = buildManifest(
      spam,
      shardDataset(spam, { scheme: 'dirichlet', shards: 4, alpha: 0.5, seed: 0 }),
    );
    spamRoot = manifest.root;
    const manifestPath = join(f.dir, 'spam.json');
    writeFileSync(manifestPath, JSON.stringify(manifest));
    await submit(f.client, {
      signer: f.alice,
      network: f.network,
      calls: [
        { type: 'registerDataset', ...registerDatasetFields(manifest, pathToFileURL(manifestPath).href) },
      ],
    });

    const config = { ...modelConfig('tiny'), kind: 'classifier', numLabels: 2, lora: LORA };
    const classify = await approveProposal(
      f,
      {
        kind: 'Finetune',
        baseCheckpoint: lm.checkpoint.id as Hex32,
        dataset: manifest.root,
        model: { config: JSON.stringify(config) },
        rounds: 2,
        roundDeadline: 300,
      },
      { localSteps: 300, batchSize: 16, learningRate: 0.005 },
    );
    await waitFor(
      onCoordinator,
      (e) =>
        e.proposal === classify && (e.type === 'failRound' || (e.type === 'finalizeRound' && e.round === 1)),
      540_000,
    );
    const p = await proposal(f, classify);
    expect(p.status, JSON.stringify(p.failure ?? null)).to.equal('completed');

    // The majority-class rate of the very examples the coordinator scored.
    const { examples } = heldOutExamples(spam, manifest, config as typeof config & { kind: 'classifier' }, {
      maxExamples: EVAL_EXAMPLES,
    });
    const labels = examples.map((e) => (e as { label: number }).label);
    const majority = Math.max(...[0, 1].map((l) => labels.filter((x) => x === l).length)) / labels.length;
    expect(majority).to.be.greaterThan(0.6).and.lessThan(0.8); // spam-assassin is about 69% ham

    const accuracy = p.finalized.map((r) => r.metrics.extra.find((m) => m.name === 'accuracy')?.value);
    expect(
      accuracy.every((a) => typeof a === 'number' && a >= 0 && a <= 1),
      `${accuracy}`,
    ).to.equal(true);
    expect(accuracy.at(-1)!, `accuracy by round ${accuracy}, majority ${majority}`).to.be.greaterThan(
      majority + 0.03,
    );
    // The coordinator also reports round 0's base (the trunk with a fresh head and adapters) in its event.
    const first = closed.find((e) => e.proposal === classify && e.round === 0)!;
    expect(first.baseAccuracy).to.be.a('number');
    expect(first.accuracy).to.equal(accuracy[0]);
    // Only the adapters and the head changed: round 0's base is not the language model's checkpoint.
    expect(p.finalized[0]!.checkpoint.id).to.not.equal(lm.checkpoint.id);
    // Anyone can repeat round 0 from the language model, the seeded head and adapters, and the published updates.
    const report = await verifyOn(f, classify, 0);
    expect(report.code, report.message).to.equal(undefined);
  });

  it("fails a classifier proposal without LoRA on a language model's checkpoint (E_MODEL_MISMATCH)", async () => {
    expect(lmCheckpoint, 'the first test made the checkpoint').to.not.equal(null);
    const failed = waitFor(onCoordinator, (e) => e.type === 'failRound', 120_000);
    const id = await approveProposal(f, {
      kind: 'Finetune',
      baseCheckpoint: lmCheckpoint!,
      dataset: spamRoot!,
      model: { config: JSON.stringify({ ...modelConfig('tiny'), kind: 'classifier', numLabels: 2 }) },
    });
    await failed;
    const p = await proposal(f, id);
    expect(p.status).to.equal('failed');
    expect(JSON.stringify(p.failure)).to.match(/E_MODEL_MISMATCH/);
  });
});
