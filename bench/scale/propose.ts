// bench scale's round: one proposal of one FedAvg round (top-k 1%, 1 ROC a worker), proposed and voted in one
// extrinsic so that a block the dev chain builds on its own cannot end the voting period first.
import { submit, type ChainClient, type Hex32, type KeyringPair } from '../../pallet-bindings/index.ts';
import { SCALE_MODEL } from './model.ts';

export interface ProposeScaleRoundParameters {
  signer: KeyringPair;
  network: Hex32;
  /** The dataset's Merkle root. */
  dataset: Hex32;
  /** The proposal's id on chain (proposals are numbered from 0 in the order they are made). */
  proposal: number;
  /** Workers in the round: the parent's slots are its sub-coordinators (minWorkers = maxWorkers = slots). */
  slots: number;
  /** Workers paid, 1 ROC each: the reward is split over every contributor, cohorts' workers included. */
  workers: number;
}

export async function proposeScaleRound(client: ChainClient, p: ProposeScaleRoundParameters): Promise<void> {
  await submit(client, {
    signer: p.signer,
    network: p.network,
    calls: [
      {
        type: 'proposeRound',
        kind: 'Pretrain',
        baseCheckpoint: null,
        dataset: p.dataset,
        model: { config: JSON.stringify(SCALE_MODEL) },
        hyperParams: {
          localSteps: 1,
          batchSize: 1,
          learningRate: 0.001,
          optimiser: 'adamw',
          fedProxMu: 0,
          aggregator: 'fedavg',
          // No clipping in both variants, so that they compare: a hierarchy refuses it (a median over every worker).
          aggregatorOptions: '{"clip":null}',
          updateEncoding: 'topk:0.01',
        },
        rounds: 1,
        minWorkers: p.slots,
        maxWorkers: p.slots,
        roundDeadline: 600,
        rewardPerRound: (BigInt(p.workers) * 10n ** 12n).toString(), // n transfers in the commit's batchAll
      },
      { type: 'vote', proposal: p.proposal, aye: true },
    ],
  });
}
