// Fetching a round's published objects from untrusted sources: bounded in size and time, and each checked by the
// caller (a blob against its hash, a publication against the chain) before use. A source that fails is skipped.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export const FETCH_TIMEOUT_MS = 30_000;

/** GET url; the body, or null on 404. Throws on other statuses, a body over maxBytes, or no answer within the timeout. */
export function httpGetBytes(
  url: string,
  { maxBytes, timeoutMs = FETCH_TIMEOUT_MS }: { maxBytes: number; timeoutMs?: number },
): Promise<Uint8Array | null> {
  return new Promise((resolve, reject) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      reject(new Error(`not a URL: ${url}`));
      return;
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      reject(new Error(`only http and https sources are fetched, not ${parsed.protocol}`));
      return;
    }
    const req = (parsed.protocol === 'https:' ? httpsRequest : httpRequest)(
      parsed,
      { method: 'GET' },
      (res) => {
        if (res.statusCode === 404) {
          res.resume();
          resolve(null);
          return;
        }
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`${url} answered HTTP ${res.statusCode}`));
          return;
        }
        const declared = Number(res.headers['content-length'] ?? NaN);
        if (declared > maxBytes) {
          res.destroy();
          reject(new Error(`${url} is ${declared} bytes, over the ${maxBytes}-byte bound`));
          return;
        }
        const parts: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            res.destroy();
            reject(new Error(`${url} sent more than ${maxBytes} bytes`));
            return;
          }
          parts.push(chunk);
        });
        res.on('end', () => resolve(new Uint8Array(Buffer.concat(parts))));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${url} did not answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The origin (scheme://host:port) of a URI, or null when it is not an http(s) URL. */
export function originOf(uri: string): string | null {
  try {
    const u = new URL(uri);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : null;
  } catch {
    return null;
  }
}
