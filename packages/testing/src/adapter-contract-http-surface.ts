import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { MasterKey } from '@keyward/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterContractTarget, RunningApp } from './adapter-contract.js';

interface RawReply {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
  json: any;
}

/**
 * `fetch`, asked again when the server answered before the client finished sending a large body
 * and closed the connection (undici then fails the write with EPIPE / ECONNRESET instead of
 * returning the early answer): a race of the test's client, not an answer of the server.
 */
async function fetchAnswered(url: string, init: RequestInit): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fetch(url, init);
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
      if (attempt === 4 || (code !== 'EPIPE' && code !== 'ECONNRESET')) throw err;
    }
  }
}

async function send(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Uint8Array,
): Promise<RawReply> {
  const res = await fetchAnswered(base + path, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/**
 * The contract's error answer, strictly: status, `content-type: application/json`, a body of
 * exactly `{error, message}` with the stable code, and nothing of a stack trace, an HTML page, or
 * the URL / input the client sent (`echo`).
 */
function expectCleanProblem(reply: RawReply, status: number, code: string, echo: string[] = []): void {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.headers.get('content-type') ?? '').toMatch(/^application\/json/);
  expect(Object.keys(reply.json ?? {}).sort(), reply.text).toEqual(['error', 'message']);
  expect(reply.json.error, reply.text).toBe(code);
  expect(typeof reply.json.message).toBe('string');
  expect(reply.text).not.toMatch(/\n\s+at |node_modules|\.[jt]s:\d+|<html|<!DOCTYPE|<pre>/i);
  expect(reply.text).not.toMatch(/FST_ERR|statusCode|Bad Request|Not Found|unexpected end of file/);
  for (const fragment of echo) expect(reply.text).not.toContain(fragment);
}

const DEMO_USERS = 'alice:alice-password:read,admin:admin-password:read admin,rs:rs-password:introspect';
const MALFORMED = '%E0%A4%A';
const LONG = 'a'.repeat(6000);
/** Over every platform's default body limit (express.json / keyward 100 KiB, Fastify 1 MiB). */
const BIG = 2 * 1024 * 1024;

/**
 * Keyward issue #11, "The HTTP surface": every 4xx a framework or body parser produces on
 * keyward's routes is the contract's `{error, message}` JSON with a stable code, and the example
 * apps answer unknown routes with a JSON 404. Called by {@link describeAdapterContract} with the
 * same target; starts an app of its own.
 *
 * @example
 * ```ts
 * describeHttpSurfaceContract('express', { start: (env) => startExampleProcess('examples/express', env) })
 * ```
 */
export function describeHttpSurfaceContract(name: string, target: AdapterContractTarget): void {
  describe(`adapter contract, HTTP surface: ${name}`, () => {
    let app: RunningApp;
    let dir: string;
    const req = (
      method: string,
      path: string,
      headers?: Record<string, string>,
      body?: string | Uint8Array,
    ) => send(app.url, method, path, headers, body);
    const tokenOf = async (user: 'alice' | 'admin' | 'rs') => {
      const r = await req(
        'POST',
        '/auth/login',
        { 'content-type': 'application/json' },
        JSON.stringify({ username: user, password: `${user}-password` }),
      );
      expect(r.status, r.text).toBe(200);
      return r.json.access_token as string;
    };
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `keyward-surface-${name.replace(/\W+/g, '-')}-`));
      app = await target.start({
        PORT: '0',
        HOST: '127.0.0.1',
        KEYWARD_DIR: dir,
        KEYWARD_MASTER_KEY: MasterKey.generate().exportText(),
        DEMO_USERS,
      });
    });
    afterAll(async () => {
      await app?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('regression #11: a %-malformed path parameter is 400 invalid_request, not an HTML stack trace', async () => {
      const admin = await tokenOf('admin');
      const json = { authorization: `Bearer ${admin}`, 'content-type': 'application/json' };
      for (const [method, path, body] of [
        ['DELETE', `/api-keys/${MALFORMED}`, undefined],
        ['PUT', `/secrets/${MALFORMED}`, '{"value":"v"}'],
        ['POST', `/admin/keys/${MALFORMED}/revoke`, '{"reason":"x"}'],
        ['GET', `/secrets/${MALFORMED}`, undefined],
      ] as const) {
        const r = await req(
          method,
          path,
          body === undefined ? { authorization: json.authorization } : json,
          body,
        );
        expectCleanProblem(r, 400, 'invalid_request', [MALFORMED, 'E0%A4', path]);
      }
    });

    it('regression #11: an over-long path parameter is 400 invalid_request without echoing the URL', async () => {
      const admin = await tokenOf('admin');
      const json = { authorization: `Bearer ${admin}`, 'content-type': 'application/json' };
      for (const [method, path, body] of [
        ['POST', `/admin/keys/${LONG}/revoke`, '{"reason":"x"}'],
        ['DELETE', `/api-keys/${LONG}`, undefined],
        ['PUT', `/secrets/${LONG}`, '{"value":"v"}'],
        ['GET', `/secrets/${LONG}`, undefined],
      ] as const) {
        const r = await req(
          method,
          path,
          body === undefined ? { authorization: json.authorization } : json,
          body,
        );
        expectCleanProblem(r, 400, 'invalid_request', ['a'.repeat(64)]);
      }
    });

    it('regression #11: a body under an unsupported or broken Content-Encoding is 400 invalid_request', async () => {
      const garbage = new Uint8Array([0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03]);
      for (const encoding of ['br', 'zstd', 'gzip', 'deflate', 'x-unknown']) {
        for (const path of ['/auth/login', '/auth/refresh']) {
          const r = await req(
            'POST',
            path,
            { 'content-type': 'application/json', 'content-encoding': encoding },
            garbage,
          );
          expectCleanProblem(r, 400, 'invalid_request', [encoding === 'x-unknown' ? encoding : '\u00de']);
        }
      }
      // A plain JSON login labelled with a coding, and a real gzip one: identity bodies only, in
      // every app (Fastify and Hono read the bytes as they are; body-parser would inflate gzip).
      const login = JSON.stringify({ username: 'alice', password: 'alice-password' });
      for (const [encoding, body] of [
        ['br', login],
        ['zstd', login],
        ['gzip', new Uint8Array(gzipSync(login))],
      ] as const) {
        const r = await req(
          'POST',
          '/auth/login',
          { 'content-type': 'application/json', 'content-encoding': encoding },
          body,
        );
        expectCleanProblem(r, 400, 'invalid_request', ['alice-password']);
      }
      const identity = await req(
        'POST',
        '/auth/login',
        { 'content-type': 'application/json', 'content-encoding': 'identity' },
        login,
      );
      expect(identity.status, identity.text).toBe(200);
    });

    it('regression #11: a JSON route refuses a form, text or multipart body (NestJS logged a user in from a form)', async () => {
      const form = 'username=alice&password=alice-password';
      for (const [type, body] of [
        ['application/x-www-form-urlencoded', form],
        ['text/plain', JSON.stringify({ username: 'alice', password: 'alice-password' })],
        [
          'multipart/form-data; boundary=x',
          `--x\r\nContent-Disposition: form-data; name="username"\r\n\r\nalice\r\n--x--\r\n`,
        ],
      ] as const) {
        const r = await req('POST', '/auth/login', { 'content-type': type }, body);
        expectCleanProblem(r, 400, 'invalid_request', ['alice-password']);
      }
      const alice = await tokenOf('alice');
      const r = await req(
        'PUT',
        '/secrets/from-a-form',
        { authorization: `Bearer ${alice}`, 'content-type': 'application/x-www-form-urlencoded' },
        'value=v',
      );
      expectCleanProblem(r, 400, 'invalid_request');
    });

    it('regression #11: a body over the limit is 413 body_too_large, on the JSON and the form routes', async () => {
      const rs = await tokenOf('rs');
      const json = await req(
        'POST',
        '/auth/login',
        { 'content-type': 'application/json' },
        JSON.stringify({ username: 'alice', password: 'x'.repeat(BIG) }),
      );
      expectCleanProblem(json, 413, 'body_too_large', ['xxxxxxxx']);
      for (const path of ['/oauth/introspect', '/oauth/revoke']) {
        const form = await req(
          'POST',
          path,
          { authorization: `Bearer ${rs}`, 'content-type': 'application/x-www-form-urlencoded' },
          `token=a&pad=${'b'.repeat(BIG)}`,
        );
        expectCleanProblem(form, 413, 'body_too_large', ['bbbbbbbb']);
      }
    });

    it('regression #11: an unknown route is a JSON 404 not_found that does not echo the path', async () => {
      for (const [method, path] of [
        ['GET', '/kw-no-such-route'],
        ['POST', '/kw-no-such-route/deeper?x=1'],
        ['DELETE', '/auth/login'],
      ] as const) {
        const r = await req(method, path);
        expectCleanProblem(r, 404, 'not_found', ['kw-no-such-route']);
      }
    });
  });
}
