// The demo's default training settings and fixed inputs, in a module with no imports so the CLI can show them without
// loading the demo.

/** Chosen by measurement on a 2-core machine: see docs/model.md ("Choosing the demo's settings"). */
export const DEMO_DEFAULTS = {
  batchSize: 16,
  lr: 0.005,
  finetuneLr: 0.02,
  evalExamples: 2048,
  /** `--classify`: the spam classifier fine-tune (docs/model.md, "The classifier stage"). */
  classifyRounds: 2,
  classifyLocalSteps: 300,
  classifyLr: 0.005,
} as const;

/** Rank 8 on all four projections: rank 4 on two of them saturated near a 4% drop on Moby Dick (docs/model.md). */
export const LORA = {
  rank: 8,
  alpha: 16,
  targets: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'],
} as const;

export const PROMPTS = {
  pretrain: 'Fellow citizens, ',
  finetune: 'Call me ',
  // A made-up spam sender, framed like the corpus's e-mails (the mbox "From " line comes first).
  classify: 'From cheapmeds4u@hotmail.com  Mon Jun 24 17:04:38 2002\nSubject: FREE!!! Make $$$ fast',
} as const;
/** The classifier stage's label skew: each label's e-mails dealt to shards by Dirichlet(0.5) proportions. */
export const CLASSIFY_ALPHA = 0.5;
