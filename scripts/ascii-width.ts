// The `string-width` that dist/vendor/yargs.js is built with (scripts/build.js): a string of printable ASCII and the
// few narrow marks fedtune's help uses (dashes, quotes, …, arrows, ≤ ≥, ×) is as wide as it is long, so it is answered
// at once; anything else goes to the real string-width. The real one segments graphemes and builds its emoji regex
// again for every character (about 40 ms of `fedtune --help`), and importing it costs 40-60 ms more.

/** Every string made only of these is one column per UTF-16 unit (test/scripts/ascii-width.test.ts checks each one). */
export const NARROW =
  /^[\x20-\x7e\u2013\u2014\u2018\u2019\u201c\u201d\u2022\u2026\u2190\u2192\u2264\u2265\u00d7\u00b7\u00b0\u00b1]*$/;

/** `real` (a string-width) with the shortcut in front; the same result for every input. */
export function asciiWidth<Options>(
  real: (string: string, options?: Options) => number,
): (string: string, options?: Options) => number {
  return function stringWidth(string, options) {
    return typeof string === 'string' && NARROW.test(string) ? string.length : real(string, options);
  };
}
