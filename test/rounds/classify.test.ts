// A classifier fine-tune through the real coordinator and workers on the dev chain: a tiny language model pre-trained on
// Moby Dick, certified, then LoRA adapters and a new head trained on spam-assassin dealt to shards with Dirichlet label
// skew. The committed accuracy is on chain and beats always answering the held-out split's most common label.
//
// Why it could fail by chance, and the settings, measured (out/-scratch sweeps, Dec 2026): the initial weights, head and
// adapters follow the network id, so each run is one draw. The sweeps replay this test's pipeline in process (seededBase,
// slot shards, taskFrame, the trainer's trainTask, the mean of the two updates, evaluateHeldOut) over network ids. One
// round mostly fails: at 32 bytes the trunk barely tells spam (a head alone stayed at the majority label, one id), so
// the adapters build the features, and two trainers doing so from one start land on different ones; their FedAvg then
// answers the majority label though each beats it (0.852/0.730 → 0.684, A frozen or not). After one short round they
// share a start, and later rounds improve the shared model. FFA-LoRA (lora.freezeA: A stays at its seeded init, B alone
// trains, so FedAvg of B is exactly FedAvg of A@B) is the steadier there (docs/model.md, LoRA). Batch 16, lr .01 unless said:
//   classifier (rounds × steps)       A and B train: pass, min / median margin   freezeA: pass, min / median    CPU/seed
//   1 × 150                           0/2   0.000 / 0.000                        1/2   0.020 / 0.035             8–10 s
//   2 × 75                            7/10  0.000 / 0.092                        8/10  -0.016 / 0.090            9 s
//   3 × 50                            7/10  -0.199 / 0.104                       10/10 0.043 / 0.096             10 s
//   3 × 100 (these settings)          12/14 0.000 / 0.145                        23/24 0.000 / 0.170             18–19 s
//   3 × 100 lr .005 | 4 × 75, ids 14–23  —                                       9/10 | 9/10 (the same id fails)  20 s
//   2 × 300, lr 0.005 (the previous)  11/11 0.125 / 0.215 (last session)         —                               41 s
// Margin: final accuracy − majority (0.6875), pass: above 0.03; CPU: both trainers' training, all rounds, wasm; load
// average 3–20 on 2 shared cores. The one id of 24 that fails: trainers 0.742/0.789 in round 2, FedAvg 0.6875. On chain
// a round can still dip (0.789 → 0.484 → 0.844 once), so the best round is asserted on; the file took 50–59 CPU s in
// four runs here (load average 6–15), the previous settings 72.8 in the same hour.
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
/** The language model's pre-training and the classifier's fine-tune (the sweep above measured alternatives). */
const PRETRAIN = { localSteps: 150, batchSize: 8, learningRate: 0.01 };
const CLASSIFY = { rounds: 3, localSteps: 100, batchSize: 16, learningRate: 0.01 };
/** FFA-LoRA: A frozen at its seeded init (the same on both trainers), so FedAvg of B is FedAvg of the adapters' A@B. */
const LORA = {
  rank: 8,
  alpha: 16,
  targets: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'],
  freezeA: true,
};

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
    const pretrain = await approveProposal(f, { rounds: 1 }, PRETRAIN);
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
    // The majority-class rate of the very examples the coordinator scores.
    const { examples } = heldOutExamples(spam, manifest, config as typeof config & { kind: 'classifier' }, {
      maxExamples: EVAL_EXAMPLES,
    });
    const labels = examples.map((e) => (e as { label: number }).label);
    const majority = Math.max(...[0, 1].map((l) => labels.filter((x) => x === l).length)) / labels.length;
    expect(majority).to.be.greaterThan(0.6).and.lessThan(0.8); // spam-assassin is about 69% ham

    /** One classifier proposal, approved, run to its last round: its id, its proposal on chain and its accuracies. */
    const classifyOnce = async () => {
      const id = await approveProposal(
        f,
        {
          kind: 'Finetune',
          baseCheckpoint: lm.checkpoint.id as Hex32,
          dataset: manifest.root,
          model: { config: JSON.stringify(config) },
          rounds: CLASSIFY.rounds,
          roundDeadline: 300,
        },
        {
          localSteps: CLASSIFY.localSteps,
          batchSize: CLASSIFY.batchSize,
          learningRate: CLASSIFY.learningRate,
        },
      );
      await waitFor(
        onCoordinator,
        (e) =>
          e.proposal === id &&
          (e.type === 'failRound' || (e.type === 'finalizeRound' && e.round === CLASSIFY.rounds - 1)),
        540_000,
      );
      const p = await proposal(f, id);
      expect(p.status, JSON.stringify(p.failure ?? null)).to.equal('completed');
      const accuracy = p.finalized.map((r) => r.metrics.extra.find((m) => m.name === 'accuracy')?.value);
      expect(
        accuracy.every((a) => typeof a === 'number' && a >= 0 && a <= 1),
        `${accuracy}`,
      ).to.equal(true);
      return { id, p, accuracy: accuracy as number[] };
    };
    const beats = (accuracy: number[]) => Math.max(...accuracy) > majority + 0.03;

    // One draw in about 25 stays at the majority label (the sweep above; seen in a CI run here: 0.6875 in every round).
    // The seeded head and adapters and the trainers' seeds follow the proposal id, so a second proposal is a second
    // draw: it runs only when the first did not beat the majority, and then it must.
    let run = await classifyOnce();
    if (!beats(run.accuracy)) {
      process.stderr.write(
        `      proposal ${run.id} stayed at the majority label (${run.accuracy}); a second draw\n`,
      );
      run = await classifyOnce();
    }
    const { id: classify, p, accuracy } = run;
    // A certified checkpoint of this fine-tune beats the majority label: the best committed round (one round can dip,
    // 0.789 → 0.484 → 0.844 once, and the sweep's one failing id of 24 failed in its last round). A model answering
    // "ham" to every e-mail fails here.
    expect(beats(accuracy), `accuracy by round ${accuracy}, majority ${majority}`).to.equal(true);
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
