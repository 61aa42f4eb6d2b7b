import { type BodyFailure, isBodyType } from '@keyward/core/http';

/** A JSON request body, or why it was refused (with whether the connection must close). */
export type JsonBody = { ok: true; value: unknown } | { ok: false; failure: BodyFailure; close: boolean };

/** A form-encoded request body as its text (core's `formFields` reads the fields), or why it was refused. */
export type FormBody =
  | { ok: true; value: string | undefined }
  | { ok: false; failure: BodyFailure; close: boolean };

// Past this many times the limit, stop draining an oversized upload and close the connection.
const DRAIN_FACTOR = 10;

type RawBody = { ok: true; bytes: Buffer | undefined } | { ok: false; failure: BodyFailure; close: boolean };

/**
 * Reads a body of at most `maxSize` bytes. An oversized upload is drained before the answer (as
 * body-parser does): answering mid-upload makes @hono/node-server drop the keep-alive socket
 * under the client.
 */
async function readRaw(request: Request, maxSize: number): Promise<RawBody> {
  const reader = request.body?.getReader();
  if (!reader) return { ok: true, bytes: undefined };
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
  return { ok: true, bytes: size === 0 ? undefined : Buffer.concat(chunks) };
}

/**
 * Reads a JSON body of at most `maxSize` bytes. Hono parses bodies on demand and `c.req.json()`
 * throws a SyntaxError (a 500) on garbage, so the body is read here and every failure becomes one
 * of core's {@link BodyFailure}s.
 */
export async function readJsonBody(request: Request, maxSize: number): Promise<JsonBody> {
  const raw = await readRaw(request, maxSize);
  if (!raw.ok) return raw;
  if (raw.bytes === undefined) return { ok: true, value: undefined };
  if (!isBodyType(request.headers.get('content-type'), 'json')) {
    return { ok: false, failure: 'unsupported_type', close: false };
  }
  try {
    return { ok: true, value: JSON.parse(raw.bytes.toString('utf8')) as unknown };
  } catch {
    return { ok: false, failure: 'malformed', close: false };
  }
}

/**
 * Reads an `application/x-www-form-urlencoded` body of at most `maxSize` bytes (the OAuth
 * endpoints), with the same limits and failures as {@link readJsonBody}, as its text: core's
 * `formFields` reads the fields. `c.req.parseBody()` is not used: it also takes multipart bodies
 * and has no size limit.
 */
export async function readFormBody(request: Request, maxSize: number): Promise<FormBody> {
  const raw = await readRaw(request, maxSize);
  if (!raw.ok) return raw;
  if (raw.bytes === undefined) return { ok: true, value: undefined };
  if (!isBodyType(request.headers.get('content-type'), 'form')) {
    return { ok: false, failure: 'unsupported_type', close: false };
  }
  return { ok: true, value: raw.bytes.toString('utf8') };
}
