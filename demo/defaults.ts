// The demo's default training settings, in a module with no imports so the CLI can show them without loading the demo.

/** Chosen by measurement on a 2-core machine: see docs/model.md ("Choosing the demo's settings"). */
export const DEMO_DEFAULTS = {
  batchSize: 16,
  lr: 0.01,
  finetuneLr: 0.02,
  evalExamples: 2048,
  /** `--classify`: the spam classifier fine-tune (docs/model.md, "The classifier stage"). */
  classifyRounds: 2,
  classifyLocalSteps: 300,
  classifyLr: 0.005,
} as const;
