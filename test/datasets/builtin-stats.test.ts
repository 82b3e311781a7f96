// The recorded sizes that `fedtune dataset list` prints without loading a corpus match the corpora as loaded.
import { expect } from 'chai';
import { BUILTIN_NAMES, builtinInfo, builtinStats, loadBuiltin } from '../../datasets/index.ts';

describe('datasets: recorded sizes of the built-in corpora', function () {
  this.timeout(120_000);
  for (const name of BUILTIN_NAMES) {
    it(`${name}: records, bytes, labels and partition key as loaded`, () => {
      const ds = loadBuiltin(name);
      const info = builtinInfo(name);
      expect(
        builtinStats(name),
        'the package version differs from the recorded one: re-measure',
      ).to.deep.equal({
        records: ds.records.length,
        bytes: ds.records.reduce((a, r) => a + Buffer.byteLength(r.text), 0),
      });
      expect(info.labels ?? null).to.deep.equal(ds.labels ?? null);
      expect(info.partitionKey ?? null).to.equal(ds.partitionKey ?? null);
    });
  }
});
