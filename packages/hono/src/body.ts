import type { BodyFailure } from '@keyward/core/http';

/** A JSON request body, or why it was refused (with whether the connection must close). */
export type JsonBody = { ok: true; value: unknown } | { ok: false; failure: BodyFailure; close: boolean };

const JSON_TYPE = /^application\/json\s*(;|$)/i;
// Past this many times the limit, stop draining an oversized upload and close the connection.
const DRAIN_FACTOR = 10;

/**
 * Reads a JSON body of at most `maxSize` bytes. Hono parses bodies on demand and `c.req.json()`
 * throws a SyntaxError (a 500) on garbage, so the body is read here and every failure becomes one
 * of core's {@link BodyFailure}s. An oversized upload is drained before the answer (as body-parser
 * does): answering mid-upload makes @hono/node-server drop the keep-alive socket under the client.
 */
export async function readJsonBody(request: Request, maxSize: number): Promise<JsonBody> {
  const reader = request.body?.getReader();
  if (!reader) return { ok: true, value: undefined };
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxSize * DRAIN_FACTOR) {
        await reader.cancel();
        return { ok: false, failure: 'too_large', close: true };
      }
      if (size <= maxSize) chunks.push(value);
    }
  } catch {
    return { ok: false, failure: 'unreadable', close: true };
  }
  if (size > maxSize) return { ok: false, failure: 'too_large', close: false };
  if (size === 0) return { ok: true, value: undefined };
  if (!JSON_TYPE.test(request.headers.get('content-type') ?? '')) {
    return { ok: false, failure: 'unsupported_type', close: false };
  }
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown };
  } catch {
    return { ok: false, failure: 'malformed', close: false };
  }
}
