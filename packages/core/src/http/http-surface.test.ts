import { afterEach, describe, expect, it } from 'vitest';
import { KeywardError } from '../errors.js';
import { MasterKey } from '../keys/master-key.js';
import { createKeyward, type Keyward } from '../keyward.js';
import { keywardOptionsFromEnv } from '../options.js';
import { createMemoryStore } from '../store/memory.js';
import { createAuthenticator } from './authenticate.js';
import { extractCredential } from './credentials.js';
import {
  asKeywardError,
  bodyFailureOf,
  invalidBody,
  routeNotFound,
  routingFailureOf,
  toHttpProblem,
} from './errors.js';
import { handleRoute, type KeywardRoute, keywardRoutes } from './routes.js';

/** What an adapter's error hook answers for `err`: the mapping every framework package shares. */
function answerOf(err: unknown) {
  const known = asKeywardError(err);
  return known ? toHttpProblem(known) : undefined;
}

describe('regression #11: framework and body-parser 4xx map to the contract', () => {
  it('regression #11: a body that does not decompress (body-parser zlib / brotli errors) is 400 invalid_request', () => {
    // The shapes body-parser hands on: zlib's own Error with status 400 and no `type`.
    for (const code of ['Z_DATA_ERROR', 'Z_BUF_ERROR', 'ERR__ERROR_FORMAT_SIMPLE_HUFFMAN_SAME']) {
      const err = Object.assign(new Error('unexpected end of file'), { code, status: 400, errno: -5 });
      expect(bodyFailureOf(err)).toBe('undecodable');
      const problem = answerOf(err);
      expect(problem?.status).toBe(400);
      expect(problem?.error).toBe('invalid_request');
      expect(problem?.message).not.toContain('unexpected end of file');
    }
    // A 5xx zlib error is not the client's: left to the application.
    expect(
      bodyFailureOf(Object.assign(new Error('x'), { code: 'Z_MEM_ERROR', status: 500 })),
    ).toBeUndefined();
  });

  it('regression #11: an unsupported Content-Encoding (body-parser 415 encoding.unsupported) is 400 invalid_request', () => {
    const err = Object.assign(new Error('unsupported content encoding "zstd"'), {
      type: 'encoding.unsupported',
      status: 415,
    });
    expect(bodyFailureOf(err)).toBe('undecodable');
    expect(answerOf(err)).toMatchObject({ status: 400, error: 'invalid_request' });
    expect(answerOf(err)?.message).not.toContain('zstd');
  });

  it('regression #11: a body over the limit is 413 body_too_large, for JSON and form routes', () => {
    for (const err of [
      { type: 'entity.too.large', status: 413 },
      { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 },
    ]) {
      expect(answerOf(err)).toEqual({
        status: 413,
        error: 'body_too_large',
        message: 'the request body is too large',
        headers: {},
      });
    }
    expect(toHttpProblem(invalidBody('too_large', 'form'))).toMatchObject({
      status: 413,
      error: 'body_too_large',
    });
  });

  it('regression #11: a %-malformed path (Express URIError, Fastify FST_ERR_BAD_URL) is 400 invalid_request without the path', () => {
    const express = Object.assign(new URIError("Failed to decode param '%E0%A4%A'"), { status: 400 });
    const fastify = Object.assign(new URIError("'/api-keys/%E0%A4%A' is not a valid url component"), {
      code: 'FST_ERR_BAD_URL',
      statusCode: 400,
    });
    for (const err of [express, fastify]) {
      const problem = answerOf(err);
      expect(problem).toMatchObject({ status: 400, error: 'invalid_request' });
      expect(problem?.message).not.toContain('%E0');
    }
    // A URIError of the application's own code (no status, or a 5xx) stays the application's.
    expect(routingFailureOf(new URIError('URI malformed'))).toBeUndefined();
    expect(routingFailureOf(Object.assign(new URIError('x'), { status: 500 }))).toBeUndefined();
  });

  it("regression #11: an over-long path parameter (Fastify's 414 FST_ERR_MAX_PARAM_LENGTH) is 400 invalid_request without the URL", () => {
    const long = `/admin/keys/${'a'.repeat(6000)}/revoke`;
    const err = Object.assign(new URIError(`'${long}' is exceeding the max param length`), {
      code: 'FST_ERR_MAX_PARAM_LENGTH',
      statusCode: 414,
    });
    const problem = answerOf(err);
    expect(problem).toMatchObject({ status: 400, error: 'invalid_request' });
    expect(problem?.message).not.toContain('aaaa');
  });

  it('an unknown route is 404 not_found', () => {
    expect(toHttpProblem(routeNotFound())).toEqual({
      status: 404,
      error: 'not_found',
      message: 'no such route',
      headers: {},
    });
  });

  it('regression #11: a malformed cookie value (kw_session=%E0%A4%A) is 400 invalid_request, not a 500', () => {
    let thrown: unknown;
    try {
      extractCredential({ cookie: 'other=1; kw_session=%E0%A4%A' }, { cookie: 'kw_session' });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(KeywardError);
    expect(toHttpProblem(thrown)).toMatchObject({ status: 400, error: 'invalid_request' });
    expect((thrown as Error).message).not.toContain('%E0');
    // A well-formed encoded value still decodes.
    expect(extractCredential({ cookie: 'kw_session=a%2Eb.c' }, { cookie: 'kw_session' })).toEqual({
      type: 'bearer',
      token: 'a.b.c',
      fromCookie: true,
    });
  });
});

describe('regression #11: handleRoute refuses what no adapter may pass on', () => {
  const open: Keyward[] = [];
  afterEach(async () => {
    for (const kw of open.splice(0)) await kw.close();
  });
  async function setup() {
    const kw = await createKeyward({
      store: createMemoryStore(),
      masterKey: MasterKey.generate().exportText(),
      logger: false,
      audit: false,
      scheduler: false,
      syncIntervalMs: 60_000,
    });
    open.push(kw);
    const users = {
      verify: async (username: string, password: string) =>
        username === 'alice' && password === 'pw' ? { sub: 'alice', scopes: ['read'] } : undefined,
    };
    const routes = keywardRoutes(
      { ...kw, metrics: { text: async () => '', contentType: 'text/plain' } },
      { users },
    );
    const route = (name: string) => routes.find((r) => r.name === name) as KeywardRoute;
    return { kw, auth: createAuthenticator(kw), route };
  }

  it('regression #11: a JSON route refuses a form body a platform parsed (NestJS logged a user in from a form)', async () => {
    const { auth, route } = await setup();
    const form = { username: 'alice', password: 'pw' };
    const refused = await handleRoute(route('login'), auth, {
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '26' },
      params: {},
      body: form,
    });
    expect(refused.status).toBe(400);
    expect(refused.body).toEqual({
      error: 'invalid_request',
      message: 'the request body must be JSON (Content-Type: application/json)',
    });
    const chunked = await handleRoute(route('login'), auth, {
      headers: { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' },
      params: {},
      body: form,
    });
    expect(chunked.status).toBe(400);
    const json = await handleRoute(route('login'), auth, {
      headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': '33' },
      params: {},
      body: form,
    });
    expect(json.status).toBe(200);
  });

  it('regression #11: a body under a Content-Encoding other than identity is 400 invalid_request in every adapter', async () => {
    const { auth, route } = await setup();
    const form = { username: 'alice', password: 'pw' };
    const json = { 'content-type': 'application/json', 'content-length': '33' };
    for (const encoding of ['gzip', 'br', 'zstd']) {
      const r = await handleRoute(route('login'), auth, {
        headers: { ...json, 'content-encoding': encoding },
        params: {},
        body: form,
      });
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({
        error: 'invalid_request',
        message: expect.stringContaining('Content-Encoding'),
      });
    }
    const identity = await handleRoute(route('login'), auth, {
      headers: { ...json, 'content-encoding': 'identity' },
      params: {},
      body: form,
    });
    expect(identity.status).toBe(200);
  });

  it('regression #11: a path parameter over 256 characters is 400 invalid_request, before authentication', async () => {
    const { kw, auth, route } = await setup();
    const token = kw.jwt.sign({ sub: 'alice', scope: 'read admin' });
    const long = 'k'.repeat(257);
    for (const [name, params] of [
      ['revokeKey', { kid: long }],
      ['getSecret', { name: long }],
      ['deleteApiKey', { id: long }],
    ] as const) {
      for (const headers of [{ authorization: `Bearer ${token}` }, {}]) {
        const r = await handleRoute(route(name), auth, { headers, params, body: undefined });
        expect(r.status).toBe(400);
        expect(r.body).toEqual({ error: 'invalid_request', message: 'a path parameter is too long' });
      }
    }
    // 256 characters still reach the route, which has its own rules (secret names: up to 128).
    const r = await handleRoute(route('revokeKey'), auth, {
      headers: { authorization: `Bearer ${token}` },
      params: { kid: 'k'.repeat(256) },
      body: { reason: 'test' },
    });
    expect(r.status).toBe(404);
  });
});

describe('LOG_LEVEL', () => {
  it('sets the default logger level, and an unknown level is config_invalid', () => {
    const options = keywardOptionsFromEnv({ LOG_LEVEL: 'warn' });
    expect((options.logger as { level?: string }).level).toBe('warn');
    expect(keywardOptionsFromEnv({}).logger).toBeUndefined();
    let thrown: unknown;
    try {
      keywardOptionsFromEnv({ LOG_LEVEL: 'verbose' });
    } catch (err) {
      thrown = err;
    }
    expect((thrown as KeywardError).code).toBe('config_invalid');
  });
});
