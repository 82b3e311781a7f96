// Reading batch outcomes from pallet_utility's events: which nested calls ran.
import { expect } from 'chai';
import { markOutcomes, type UtilityEvent } from '../../pallet-bindings/outcomes.ts';
import type { ChainCall } from '../../pallet-bindings/index.ts';

const r = (n: number): ChainCall => ({ kind: 'remark', data: new Uint8Array([n]), ok: false });
const b = (mode: 'batch' | 'batchAll' | 'forceBatch', calls: ChainCall[]): ChainCall => ({
  kind: 'batch',
  mode,
  calls,
  ok: false,
});
/** The ok flags of the leaves, depth-first. */
function leaves(call: ChainCall): boolean[] {
  return call.kind === 'batch' ? call.calls.flatMap(leaves) : [call.ok];
}
const run = (call: ChainCall, ok: boolean, events: UtilityEvent[]) => {
  const out = markOutcomes(call, ok, events);
  return { consistent: out.consistent, leaves: leaves(out.call) };
};

describe('pallet-bindings batch outcomes', () => {
  it('a failed extrinsic runs nothing; a plain call of a successful one runs', () => {
    expect(run(b('batchAll', [r(1), r(2)]), false, [])).to.deep.equal({
      consistent: true,
      leaves: [false, false],
    });
    expect(run(r(1), true, [])).to.deep.equal({ consistent: true, leaves: [true] });
  });

  it('batch: calls after the interrupting one do not run', () => {
    const events: UtilityEvent[] = ['ItemCompleted', 'BatchInterrupted'];
    expect(run(b('batch', [r(1), r(2), r(3)]), true, events).leaves).to.deep.equal([true, false, false]);
  });

  it('forceBatch: failed items are skipped, the rest run', () => {
    const events: UtilityEvent[] = ['ItemFailed', 'ItemCompleted', 'ItemFailed', 'BatchCompletedWithErrors'];
    expect(run(b('forceBatch', [r(1), r(2), r(3)]), true, events).leaves).to.deep.equal([false, true, false]);
  });

  it('nested: a failed batchAll inside a forceBatch leaves no events and its calls do not run', () => {
    const tree = b('forceBatch', [b('batchAll', [r(1), r(2)]), b('forceBatch', [r(3), r(4)]), r(5)]);
    const events: UtilityEvent[] = [
      'ItemFailed', // the batchAll failed as a whole (its own events rolled back)
      'ItemFailed', // inner forceBatch: r3 failed
      'ItemCompleted', // r4
      'BatchCompletedWithErrors', // inner forceBatch done
      'ItemCompleted', // outer: item 1
      'ItemCompleted', // r5
      'BatchCompletedWithErrors',
    ];
    expect(run(tree, true, events)).to.deep.equal({
      consistent: true,
      leaves: [false, false, false, true, true],
    });
  });

  it('nested: an interrupted inner batch still completes as an item of the outer one', () => {
    const tree = b('batchAll', [b('batch', [r(1), r(2)]), r(3)]);
    const events: UtilityEvent[] = [
      'ItemCompleted',
      'BatchInterrupted',
      'ItemCompleted',
      'ItemCompleted',
      'BatchCompleted',
    ];
    expect(run(tree, true, events)).to.deep.equal({ consistent: true, leaves: [true, false, true] });
  });

  it('events that do not fit the tree count nothing', () => {
    expect(run(b('batch', [r(1), r(2)]), true, ['ItemCompleted'])).to.deep.equal({
      consistent: false,
      leaves: [false, false],
    });
  });
});
