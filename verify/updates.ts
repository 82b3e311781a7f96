// The round's published updates, fetched from untrusted sources and checked: the publication against the committed
// updatesRoot, each worker's signature, each payload (and any blob) against its hash.
import { cryptoWaitReady, signatureVerify } from '@polkadot/util-crypto';
import { sha256Hex } from '../checkpoints/index.ts';
import { fromHex, updateLeafHash, updatesTree, type FinalizedRound } from '../pallet-bindings/index.ts';
import { updateMessage } from '../proto/index.ts';
import type { RoundContext } from './context.ts';
import { httpGetBytes } from './fetch.ts';
import { parsePublication, type RoundPublication } from './publication.ts';
import { VerifyFailure, type VerifyRoundParams } from './types.ts';

/** The largest update payload fetched (a dense float32 update of a 256 M-parameter model). */
export const MAX_UPDATE_BYTES = 1 << 30;
const MAX_PUBLICATION_BYTES = 64 << 20;

export async function fetchPublication(
  params: VerifyRoundParams,
  f: FinalizedRound,
  ctx: RoundContext,
): Promise<{ value: RoundPublication; detail: string }> {
  const problems: string[] = [];
  for (const source of ctx.sources) {
    let bytes: Uint8Array | null;
    try {
      bytes = await httpGetBytes(`${source}/rounds/${params.proposal}/${params.round}`, {
        maxBytes: MAX_PUBLICATION_BYTES,
      });
    } catch (error) {
      problems.push(`${source}: ${(error as Error).message}`);
      continue;
    }
    if (bytes === null) {
      problems.push(`${source}: not published there`);
      continue;
    }
    const pub = parsePublication(new TextDecoder().decode(bytes));
    const leaves = pub.updates.map((u) => ({
      account: u.account,
      updateHash: updateLeafHash({
        proposal: params.proposal,
        round: params.round,
        account: u.account,
        samples: u.samples,
        payloadSha256: fromHex(u.payloadSha256),
      }),
    }));
    const root = updatesTree(leaves).root;
    const sameHeader =
      pub.network === params.network &&
      pub.proposal === params.proposal &&
      pub.round === params.round &&
      pub.coordinator === f.coordinator &&
      pub.codec === ctx.encoding.codec;
    if (
      !sameHeader ||
      root !== f.updatesRoot ||
      new Set(pub.updates.map((u) => u.account)).size !== leaves.length
    ) {
      // Another source may serve the true record; if none does, the committed root has no published updates.
      problems.push(
        `${source}: its ${pub.updates.length} update(s) hash to ${root}, not the committed updatesRoot ${f.updatesRoot}`,
      );
      continue;
    }
    return { value: pub, detail: `${pub.updates.length} update(s) under updatesRoot, from ${source}` };
  }
  const hashed = problems.some((m) => m.includes('hash to'));
  throw new VerifyFailure(
    hashed ? 'E_UPDATE_HASH' : 'E_UPDATE_UNAVAILABLE',
    `no source serves the updates under updatesRoot ${f.updatesRoot}: ${problems.join('; ') || 'no sources'}`,
    f.coordinator,
  );
}

export async function checkSignatures(
  params: VerifyRoundParams,
  f: FinalizedRound,
  pub: RoundPublication,
): Promise<{ value: void; detail: string }> {
  await cryptoWaitReady();
  for (const u of pub.updates) {
    const message = updateMessage({
      network: params.network,
      coordinator: f.coordinator,
      proposal: params.proposal,
      round: params.round,
      samples: u.samples,
      payloadBytes: u.payloadBytes,
      base: pub.base,
      codec: pub.codec,
      shards: u.shards,
      payloadSha256: fromHex(u.payloadSha256),
    });
    let valid: boolean;
    try {
      valid = signatureVerify(message, Buffer.from(u.signature.slice(2), 'hex'), u.account).isValid;
    } catch {
      valid = false;
    }
    if (!valid)
      throw new VerifyFailure(
        'E_UPDATE_SIGNATURE',
        `the update of ${u.account} is not signed by it: the coordinator accepted or published a forged update`,
        f.coordinator,
      );
  }
  return { value: undefined, detail: `${pub.updates.length} worker signature(s) valid` };
}

export async function fetchPayloads(
  sources: string[],
  pub: RoundPublication,
  f: FinalizedRound,
): Promise<{ value: Map<string, Uint8Array>; detail: string }> {
  const out = new Map<string, Uint8Array>();
  let bytes = 0;
  for (const u of pub.updates) {
    const { body, problems } = await fetchBlob(
      sources,
      u.payloadSha256,
      Math.min(MAX_UPDATE_BYTES, u.payloadBytes),
    );
    if (!body)
      throw new VerifyFailure(
        'E_UPDATE_UNAVAILABLE',
        `no source serves the update of ${u.account} (${u.payloadSha256}): ${problems.join('; ') || 'no sources'}`,
        f.coordinator,
      );
    out.set(u.account, body);
    bytes += body.length;
  }
  return {
    value: out,
    detail: `${out.size} payload(s), ${(bytes / 1e6).toFixed(2)} MB, each matching its leaf`,
  };
}

/** A blob from the first source that serves bytes hashing to its name; what each other source did, otherwise. */
export async function fetchBlob(
  sources: string[],
  hash: string,
  maxBytes: number,
): Promise<{ body: Uint8Array | null; problems: string[] }> {
  const problems: string[] = [];
  for (const source of sources) {
    let body: Uint8Array | null;
    try {
      body = await httpGetBytes(`${source}/blobs/${hash}`, { maxBytes });
    } catch (error) {
      problems.push(`${source}: ${(error as Error).message}`);
      continue;
    }
    if (body === null) problems.push(`${source}: not there`);
    else if (sha256Hex(body) !== hash) problems.push(`${source}: served other bytes`);
    else return { body, problems };
  }
  return { body: null, problems };
}
