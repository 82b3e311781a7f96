// The deterministic reducer: (state, finalized block) → state. Pure: it never mutates its input and never throws on chain data.
import { decodePayload, deriveNetworkId, hasMagic, PayloadError } from './codec.ts';
import { endBlock } from './decide.ts';
import { Draft, RuleBroken } from './draft.ts';
import {
  createNetwork,
  deregisterWorker,
  proposeMembership,
  registerDataset,
  registerWorker,
  vote,
  type Call,
} from './reduce-dao.ts';
import { failRound, finalizeRound, openRound, proposeRound } from './reduce-rounds.ts';
import { attest, dispute, upholdDispute } from './reduce-verdicts.ts';
import { applyRegisterWorkers } from './registrations.ts';
import type { CallSite, ChainBlock, ChainCall, NetworkState, ProtocolState } from './state.ts';
import type { Account, FedtuneCall, Hex32 } from './types.ts';

export { ayesNeeded } from './reduce-dao.ts';

/** A remark of an extrinsic that ran, with the transfers that ran beside it in its innermost batchAll. */
interface Remark {
  data: Uint8Array;
  position: number;
  transfers: { account: Account; amount: string }[];
}

/** Remarks of one extrinsic in execution order; calls that did not run (or were rolled back) are skipped. */
function remarksOf(call: ChainCall): Remark[] {
  const out: Remark[] = [];
  let position = 0;
  const walk = (node: ChainCall, live: boolean, siblings: Remark['transfers']): void => {
    const runs = live && node.ok;
    if (node.kind === 'remark') {
      if (runs) out.push({ data: node.data, position, transfers: siblings });
      position += 1;
    } else if (node.kind === 'batch') {
      const transfers =
        node.mode === 'batchAll'
          ? node.calls.flatMap((c) =>
              c.kind === 'transfer' && c.ok && runs ? [{ account: c.dest, amount: c.value }] : [],
            )
          : [];
      for (const child of node.calls) walk(child, runs, node.mode === 'batchAll' ? transfers : []);
    }
  };
  walk(call, true, []);
  return out;
}

/**
 * Folds one finalized block into the state. Blocks at or below `state.height` are already in and change nothing.
 * Calls are applied in extrinsic order and, inside batches, in call order; at the end of the block every
 * proposal whose deadline is this block is decided.
 */
export function reduceBlock(state: ProtocolState, block: ChainBlock): ProtocolState {
  if (block.number <= state.height) return state;
  const draft = new Draft(state);
  for (const extrinsic of block.extrinsics) {
    if (!extrinsic.ok || extrinsic.signer === null) continue;
    let remarks: Remark[];
    try {
      remarks = remarksOf(extrinsic.call);
    } catch {
      continue;
    }
    for (const remark of remarks) {
      if (!hasMagic(remark.data)) continue;
      const site: CallSite = {
        block: block.number,
        extrinsic: extrinsic.index,
        call: remark.position,
        signer: extrinsic.signer,
      };
      applyRemark(draft, block, site, extrinsic.signer, remark);
    }
  }
  endBlock(draft, block.number);
  draft.state.height = block.number;
  draft.state.blockHash = block.hash;
  return draft.state;
}

/** Folds blocks in order. */
export function reduceBlocks(state: ProtocolState, blocks: Iterable<ChainBlock>): ProtocolState {
  let s = state;
  for (const block of blocks) s = reduceBlock(s, block);
  return s;
}

function applyRemark(draft: Draft, block: ChainBlock, site: CallSite, signer: Account, remark: Remark): void {
  let network: Hex32 | null;
  let call: FedtuneCall;
  try {
    ({ network, call } = decodePayload(remark.data));
  } catch (error) {
    const code = error instanceof PayloadError ? error.code : 'E_MALFORMED_PAYLOAD';
    draft.ignore({ ...site, code, reason: (error as Error).message });
    return;
  }
  const only = draft.state.only;
  if (call.type === 'createNetwork') {
    const id = deriveNetworkId(block.hash, site.extrinsic, site.call);
    if (only !== null && id !== only) {
      draft.ignore({
        ...site,
        code: 'E_OTHER_NETWORK',
        reason: `creates network ${id}, following ${only} only`,
      });
      return;
    }
    try {
      createNetwork(draft, id, call, signer, block.number);
    } catch (error) {
      recordRule(draft, site, null, call, error);
    }
    return;
  }
  if (only !== null && network !== only) {
    draft.ignore({
      ...site,
      code: 'E_OTHER_NETWORK',
      reason: `addressed to network ${network}, following ${only} only`,
    });
    return;
  }
  if (draft.state.networks[network!] === undefined) {
    draft.ignore({ ...site, code: 'E_UNKNOWN_NETWORK', reason: `no network ${network}` });
    return;
  }
  try {
    applyCall(draft, draft.network(network!), call, signer, block.number, remark);
  } catch (error) {
    recordRule(draft, site, network, call, error);
  }
}

function recordRule(
  draft: Draft,
  site: CallSite,
  network: Hex32 | null,
  call: FedtuneCall,
  error: unknown,
): void {
  const rule =
    error instanceof RuleBroken
      ? error
      : new RuleBroken('E_REDUCER_INTERNAL', `unexpected: ${String(error)}`);
  draft.audit({ ...site, network, callType: call.type, code: rule.code, reason: rule.reason });
}

/** One call, by its type; each family's rules live in reduce-dao.ts, reduce-rounds.ts and reduce-verdicts.ts. */
function applyCall(
  draft: Draft,
  net: NetworkState,
  call: Exclude<FedtuneCall, Call<'createNetwork'>>,
  signer: Account,
  block: number,
  remark: Remark,
): void {
  switch (call.type) {
    case 'registerDataset':
      return registerDataset(net, call, signer, block);
    case 'registerWorker':
      return registerWorker(net, call, signer, block);
    case 'registerWorkers':
      return applyRegisterWorkers(net, call, block);
    case 'deregisterWorker':
      return deregisterWorker(net, signer);
    case 'proposeRound':
      return proposeRound(draft, net, call, signer, block);
    case 'proposeMembership':
      return proposeMembership(draft, net, call, signer, block);
    case 'vote':
      return vote(draft, net, call, signer, block);
    case 'openRound':
      return openRound(draft, net, call, signer, block);
    case 'finalizeRound':
      return finalizeRound(draft, net, call, signer, block, remark.transfers);
    case 'attest':
      return attest(draft, net, call, signer, block);
    case 'failRound':
      return failRound(draft, net, call, signer, block);
    case 'dispute':
      return dispute(draft, net, call, signer, block);
    case 'upholdDispute':
      return upholdDispute(draft, net, call, signer, block);
  }
}
