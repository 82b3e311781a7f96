// submitChecked: the one way fedtune puts protocol calls on chain. The calls are encoded and folded through the reducer
// before anything is signed, then submitted, and counted only when the reducer's state at their block shows them applied.
import { u8aToHex, hexToU8a } from '@polkadot/util';
import { buildCall, syncState, type CallBuilders, type ChainClient } from './client.ts';
import { submit, type Inclusion, type SubmitParameters } from './submit.ts';
import { encodePayload } from './codec.ts';
import { PalletError } from './errors.ts';
import { reduceBlock } from './reducer.ts';
import type { ChainCall, ProtocolState } from './state.ts';
import { toAccount } from './scale-types.ts';

/** The protocol's rules refused the calls (before submission, or in the block they landed in): retrying cannot help. */
export class ProtocolRejection extends PalletError {}

export interface SubmitCheckedParameters extends SubmitParameters {
  /** The state to dry-run the calls against (the signer's current view); without it the calls are only checked after. */
  state?: ProtocolState;
  /** Brings the protocol state to at least block `to` (default: a sync from `state`, or from block `from`). */
  sync?: (to: number) => Promise<ProtocolState>;
  from?: number;
  /** What must hold once the calls are applied, e.g. the round shows as finalized; a string says what is missing. */
  confirm?: (state: ProtocolState) => string | null;
}

export interface CheckedSubmission {
  inclusion: Inclusion;
  /** The protocol state at (at least) the inclusion block. */
  state: ProtocolState;
}

/** The reducer's view of the extrinsic submit() will build: the same remarks and transfers, in the same shape. */
const treeBuilders: CallBuilders<ChainCall> = {
  system: { remarkWithEvent: (remark) => ({ kind: 'remark', data: hexToU8a(remark), ok: true }) },
  utility: { batchAll: (calls) => ({ kind: 'batch', mode: 'batchAll', calls, ok: true }) },
  balances: {
    transferKeepAlive: (dest, value) => ({
      kind: 'transfer',
      dest: toAccount(dest),
      value: value.toString(),
      ok: true,
    }),
  },
};

/** The first rule the calls break at this site, from the reducer's audit or its list of unreadable payloads. */
function verdict(
  state: ProtocolState,
  block: number,
  extrinsic: number,
): { code: string; message: string } | null {
  const broken = state.audit.find((a) => a.block === block && a.extrinsic === extrinsic);
  if (broken) return { code: broken.code, message: `${broken.callType} was rejected: ${broken.reason}` };
  const ignored = state.ignored.find((a) => a.block === block && a.extrinsic === extrinsic);
  if (ignored) return { code: ignored.code, message: `the payload was not read: ${ignored.reason}` };
  return null;
}

/** Folds the calls, as one extrinsic of the next block, through the reducer: the rule they would break, if any. */
export function dryRun(
  state: ProtocolState,
  params: SubmitParameters,
): { code: string; message: string } | null {
  const payloads = params.calls.map((call) => encodePayload({ network: params.network, call }));
  const call = buildCall(treeBuilders, payloads, params.transfers ?? []);
  const block = state.height + 1;
  const after = reduceBlock(state, {
    number: block,
    hash: u8aToHex(new Uint8Array(32)),
    parentHash: state.blockHash ?? u8aToHex(new Uint8Array(32)),
    extrinsics: [{ index: 0, signer: toAccount(params.signer.address), ok: true, call }],
  });
  return verdict(after, block, 0);
}

/**
 * Dry-runs, submits and waits for the reducer's verdict at the inclusion block. Throws ProtocolRejection with the
 * rule's code when the calls break one (before submission when `state` is given) or when `confirm` is not met.
 */
export async function submitChecked(
  client: ChainClient,
  params: SubmitCheckedParameters,
): Promise<CheckedSubmission> {
  if (params.state) {
    const early = dryRun(params.state, params);
    if (early) throw new ProtocolRejection(early.code, `${early.message} (checked before submitting)`);
  }
  const inclusion = await submit(client, params);
  const state = params.sync
    ? await params.sync(inclusion.blockNumber)
    : await syncState(client, { state: params.state, from: params.from, to: inclusion.blockNumber });
  const late = verdict(state, inclusion.blockNumber, inclusion.extrinsicIndex);
  if (late) {
    throw new ProtocolRejection(late.code, `${late.message} (block ${inclusion.blockNumber})`, {
      details: { ...inclusion },
    });
  }
  const missing = params.confirm?.(state) ?? null;
  if (missing !== null) {
    throw new ProtocolRejection(
      'E_NOT_APPLIED',
      `block ${inclusion.blockNumber} holds the calls but ${missing}`,
      {
        details: { ...inclusion },
      },
    );
  }
  return { inclusion, state };
}
