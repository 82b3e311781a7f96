// Test helper: each built-in corpus loaded once per mocha process, shared by every datasets test file.
import { loadBuiltin, type BuiltinName, type Dataset } from '../../datasets/index.ts';

const cache = new Map<BuiltinName, Dataset>();

export function corpus(name: BuiltinName): Dataset {
  let ds = cache.get(name);
  if (!ds) {
    ds = loadBuiltin(name);
    cache.set(name, ds);
  }
  return ds;
}

/** `fn` must throw an error whose `code` is `code`; returns it for further checks. */
export function expectCode(
  fn: () => unknown,
  code: string,
): Error & { code: string; details?: Record<string, unknown> } {
  try {
    fn();
  } catch (error) {
    const e = error as Error & { code: string };
    if (e.code !== code) {
      throw new Error(`expected error code ${code}, got ${e.code}: ${e.message}`, { cause: error });
    }
    return e;
  }
  throw new Error(`expected error code ${code}, but nothing was thrown`);
}
