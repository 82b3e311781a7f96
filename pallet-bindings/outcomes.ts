// Which calls of an extrinsic ran: the extrinsic's outcome and pallet_utility's events, matched against the call tree.
import type { ChainCall } from './state.ts';

/** The pallet_utility events that tell batch outcomes apart, in the order the extrinsic emitted them. */
export type UtilityEvent =
  'ItemCompleted' | 'ItemFailed' | 'BatchInterrupted' | 'BatchCompleted' | 'BatchCompletedWithErrors';

export const UTILITY_EVENTS: readonly UtilityEvent[] = [
  'ItemCompleted',
  'ItemFailed',
  'BatchInterrupted',
  'BatchCompleted',
  'BatchCompletedWithErrors',
];

function markAll(call: ChainCall, ok: boolean): ChainCall {
  return call.kind === 'batch'
    ? { ...call, ok, calls: call.calls.map((c) => markAll(c, ok)) }
    : { ...call, ok };
}

/**
 * Parses one batch's events from `pos`. A failed item leaves no events of its own (FRAME rolls its storage,
 * events included, back), so an item ran if and only if the next event after its own is ItemCompleted.
 * Returns null when the events do not fit the tree.
 */
function parseBatch(
  node: Extract<ChainCall, { kind: 'batch' }>,
  events: readonly UtilityEvent[],
  start: number,
): { pos: number; node: ChainCall } | null {
  let pos = start;
  const calls: ChainCall[] = [];
  for (let i = 0; i < node.calls.length; i++) {
    const item = node.calls[i]!;
    let ran: ChainCall | null = null;
    let after = pos;
    if (item.kind === 'batch') {
      const inner = parseBatch(item, events, pos);
      if (inner !== null) {
        ran = inner.node;
        after = inner.pos;
      }
    } else {
      ran = { ...item, ok: true };
    }
    if (ran !== null && events[after] === 'ItemCompleted') {
      calls.push(ran);
      pos = after + 1;
      continue;
    }
    if (node.mode === 'forceBatch' && events[pos] === 'ItemFailed') {
      calls.push(markAll(item, false));
      pos += 1;
      continue;
    }
    if (node.mode === 'batch' && events[pos] === 'BatchInterrupted') {
      // The failing item and every item after it did not run; `batch` itself still succeeds.
      for (const rest of node.calls.slice(i)) calls.push(markAll(rest, false));
      return { pos: pos + 1, node: { ...node, ok: true, calls } };
    }
    return null;
  }
  const end = events[pos];
  const fits = end === 'BatchCompleted' || (node.mode === 'forceBatch' && end === 'BatchCompletedWithErrors');
  return fits ? { pos: pos + 1, node: { ...node, ok: true, calls } } : null;
}

/**
 * Marks every call of an extrinsic with whether it ran and stands. `consistent` is false when the utility
 * events do not fit the call tree (a call we do not model that batches internally, say); then nothing
 * inside the extrinsic counts, which is the safe reading.
 */
export function markOutcomes(
  call: ChainCall,
  extrinsicOk: boolean,
  utilityEvents: readonly UtilityEvent[],
): { call: ChainCall; consistent: boolean } {
  if (!extrinsicOk) return { call: markAll(call, false), consistent: true };
  if (call.kind !== 'batch') return { call: { ...call, ok: true }, consistent: true };
  const parsed = parseBatch(call, utilityEvents, 0);
  if (parsed === null || parsed.pos !== utilityEvents.length)
    return { call: markAll(call, false), consistent: false };
  return { call: parsed.node, consistent: true };
}
