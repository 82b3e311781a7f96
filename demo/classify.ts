// The demo's classifier stage: LoRA adapters and a new head on the pre-trained checkpoint, trained on spam-assassin
// dealt to shards with Dirichlet label skew; then a consumer downloads the result, verifies it and classifies an e-mail.
import { join } from 'node:path';
import { modelConfig, type PresetName } from '../model/index.ts';
import { CLASSIFY_ALPHA, LORA, PROMPTS } from './defaults.ts';
import { fedtune, json } from './process.ts';
import { heldOutLabels } from './setup.ts';
import type { DemoRun, DemoSteps } from './steps.ts';
import type { DemoClassify } from './summary.ts';

/** The stage's training: rounds, optimiser steps per worker per round, learning rate. */
export interface ClassifyOptions {
  rounds: number;
  localSteps: number;
  lr: number;
}

/** What the stage runs with: the run, its steps, the model preset and where progress lines go. */
export interface ClassifyDependencies {
  run: DemoRun;
  steps: DemoSteps;
  model: PresetName;
  step: (text: string) => void;
}

/**
 * Charlie proposes the classifier of `base`; Alice and Bob vote once `votersFree` (their attestations) is in.
 * `baseAccuracy`: each classifier proposal's round-0 accuracy, from the coordinator's events.
 */
export async function classifyStage(
  deps: ClassifyDependencies,
  c: ClassifyOptions,
  base: string,
  dataset: { name: string; root: string },
  votersFree: Promise<unknown>,
  baseAccuracy: ReadonlyMap<number, number>,
): Promise<DemoClassify> {
  const { run, step } = deps;
  const { propose, roundArgs, waitCompleted, roundProposal } = deps.steps;
  const { out, netFlags, evalExamples } = run;
  const classifierConfig = { ...modelConfig(deps.model), kind: 'classifier', numLabels: 2, lora: LORA };
  const id = await propose(
    '//Charlie',
    ['--kind', 'finetune', '--base', base, '--dataset', dataset.root].concat(
      ['--model-config', JSON.stringify(classifierConfig), '--encoding', 'dense'],
      roundArgs(c.rounds, 5n, c.localSteps, c.lr),
    ),
    [
      ['//Alice', votersFree],
      ['//Bob', votersFree],
    ],
  );
  step(
    `classifier proposal ${id} (LoRA rank ${LORA.rank} + a 2-label head on the pre-trained checkpoint, spam-assassin with Dirichlet(${CLASSIFY_ALPHA}) label skew, ${c.rounds} rounds) approved`,
  );
  await waitCompleted(id);
  const finalized = (await roundProposal(id)).finalized;
  const accuracyOf = (f: (typeof finalized)[number]) =>
    f.metrics.extra.find((m) => m.name === 'accuracy')?.value ?? Number.NaN;
  const checkpointId = finalized.at(-1)!.checkpoint.id;
  const dir = join(out, 'classify-download');
  await fedtune(['checkpoint', 'download', checkpointId, '--out', dir], netFlags);
  await fedtune(['checkpoint', 'verify', dir], netFlags);
  const sample = json<DemoClassify['sample']>(
    await fedtune(['generate', '--checkpoint', dir, '--prompt', PROMPTS.classify, '--json'], netFlags),
  );
  const held = heldOutLabels(join(out, 'spam-assassin.manifest.json'), evalExamples);
  const result: DemoClassify = {
    proposal: id,
    dataset: dataset.root,
    checkpointId,
    evalExamples: held.length,
    accuracyBefore: baseAccuracy.get(id) ?? Number.NaN,
    accuracyAfter: accuracyOf(finalized.at(-1)!),
    accuracyByRound: finalized.map(accuracyOf),
    majorityRate:
      Math.max(...[...new Set(held)].map((l) => held.filter((x) => x === l).length)) / held.length,
    sample,
  };
  step(
    `classifier ${checkpointId.slice(0, 18)}… downloaded and verified: held-out accuracy ${result.accuracyBefore.toFixed(3)} → ${result.accuracyAfter.toFixed(3)} (majority class ${result.majorityRate.toFixed(3)}); ${JSON.stringify(PROMPTS.classify.split('\n')[0])}… → ${sample.labels.map((l) => `${l.label} ${l.probability.toFixed(2)}`).join(', ')}`,
  );
  return result;
}
