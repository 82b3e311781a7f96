// Fuzzing helpers: every decoder under test must either return or throw its own coded error, nothing else.
import fc from 'fast-check';

/** Runs per property: small in CI; FUZZ_RUNS=20000 for a longer local run. The seed is fixed so CI is reproducible. */
export const FUZZ = {
  seed: Number(process.env.FUZZ_SEED ?? 1414),
  numRuns: Number(process.env.FUZZ_RUNS ?? 300),
};

/** Calls `fn`; passes if it returns or throws an instance of `type` with a code matching E_[A-Z0-9_]+. */
export function returnsOrCoded(fn: () => unknown, type: abstract new (...args: never[]) => Error): void {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof type))
      throw new Error(`expected a ${type.name}, got ${String(error)}`, { cause: error });
    const code = (error as Error & { code?: unknown }).code;
    if (typeof code !== 'string' || !/^E_[A-Z0-9_]+$/.test(code))
      throw new Error(`a ${type.name} without a code: ${error.message}`, { cause: error });
  }
}

/** A valid input with some bytes overwritten, some cut off or some appended: the inputs decoders meet in practice. */
export function mutated(valid: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc
      .array(fc.tuple(fc.nat({ max: Math.max(0, valid.length - 1) }), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      })
      .map((edits) => {
        const out = valid.slice();
        for (const [at, byte] of edits) out[at] = byte;
        return out;
      }),
    fc.nat({ max: valid.length }).map((n) => valid.slice(0, n)),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((tail) => new Uint8Array([...valid, ...tail])),
    // A little-endian u32 anywhere set to a huge value: counts and lengths that claim more than there is.
    fc
      .tuple(
        fc.nat({ max: Math.max(0, valid.length - 4) }),
        fc.constantFrom(0xffffffff, 0x7fffffff, 0x01000000, 65_536),
      )
      .map(([at, value]) => {
        const out = valid.slice();
        if (out.length >= 4) new DataView(out.buffer).setUint32(at, value, true);
        return out;
      }),
  );
}
