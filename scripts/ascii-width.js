// The `string-width` that dist/vendor/yargs.js is built with (scripts/build.js): a string of printable ASCII is as
// wide as it is long, so it is answered at once; anything else goes to the real string-width. The real one segments
// graphemes and builds its emoji regex again for every character: rendering `fedtune --help` spent about 40 ms there.

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** `real` (a string-width) with the printable-ASCII shortcut in front; same results for every input. */
export function asciiWidth(real) {
  return function stringWidth(string, options) {
    return typeof string === 'string' && PRINTABLE_ASCII.test(string) ? string.length : real(string, options);
  };
}
