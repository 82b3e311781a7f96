// Imported by client.ts: keeps one expected @polkadot/api notice off the terminal, whatever fedtune's log level.
// @polkadot/api writes "API/INIT: MetadataApi not available, rpc::state::get_metadata will be used." straight to
// console.warn when a runtime predates the Metadata runtime API (the dev chain's spec 900 does; docs/devnet.md). It is
// a fallback, not a fault, and it has no logger to configure, so that one line is dropped here; every other warning
// passes through unchanged.
const NOTICE = 'MetadataApi not available';
const FLAG = Symbol.for('fedtune.quietMetadataApi');

const holder = console as unknown as Record<symbol, boolean>;
if (!holder[FLAG]) {
  holder[FLAG] = true;
  const warn = console.warn.bind(console);
  console.warn = (...args: unknown[]) => {
    if (args.some((a) => typeof a === 'string' && a.includes(NOTICE))) return;
    warn(...args);
  };
}
