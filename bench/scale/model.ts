// The model bench scale trains: a one-layer transformer LM of 873,216 parameters (about 1 M), as bench rounds uses.
import type { ModelConfig } from '../../model/index.ts';

export const SCALE_MODEL: ModelConfig = {
  kind: 'lm',
  vocabSize: 260,
  context: 64,
  dModel: 256,
  nLayer: 1,
  nHead: 4,
  dMlp: 1024,
  dropout: 0,
};
