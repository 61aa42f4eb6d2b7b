import { describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { createKeywardCore } from '../core.js';
import { KeywardError } from '../errors.js';
import { MasterKey } from '../keys/master-key.js';
import { createMemoryStore } from '../store/memory.js';
import { createAuthenticator } from './authenticate.js';
import { extractCredential } from './credentials.js';
import { bodyFailureOf, toHttpProblem } from './errors.js';

describe('extractCredential', () => {
  it('reads Bearer case-insensitively, and X-API-Key', () => {
    expect(extractCredential({ authorization: 'bEaReR abc.def.ghi' })).toEqual({
      type: 'bearer',
      token: 'abc.def.ghi',
    });
    expect(extractCredential({ 'x-api-key': 'kw_x' })).toEqual({ type: 'api_key', key: 'kw_x' });
    expect(extractCredential({})).toBeUndefined();
  });

  it('answers invalid_request for another scheme, an empty token, two credentials or repeated headers', () => {
    expect(codeOf(() => extractCredential({ authorization: 'Basic YTpi' }))).toBe('invalid_request');
    expect(codeOf(() => extractCredential({ authorization: 'Bearer' }))).toBe('invalid_request');
    expect(codeOf(() => extractCredential({ authorization: 'Bearer a b' }))).toBe('invalid_request');
    expect(codeOf(() => extractCredential({ authorization: 'Bearer a.b.c', 'x-api-key': 'kw_x' }))).toBe(
      'invalid_request',
    );
    expect(codeOf(() => extractCredential({ 'x-api-key': ['a', 'b'] }))).toBe('invalid_request');
  });
});

describe('toHttpProblem', () => {
  it('follows RFC 6750: no credentials, bad token, missing scope, malformed request', () => {
    // A value a core API refused is the caller's bad input: 400, never a 500.
    expect(toHttpProblem(new KeywardError('invalid_argument', 'owner must be short'))).toMatchObject({
      status: 400,
      error: 'invalid_request',
      message: 'owner must be short',
    });
    expect(toHttpProblem(new KeywardError('missing_credentials', 'authentication required'))).toMatchObject({
      status: 401,
      headers: { 'www-authenticate': 'Bearer realm="keyward"' },
    });
    const expired = toHttpProblem(new KeywardError('token_expired', 'token expired'));
    expect(expired.status).toBe(401);
    expect(expired.error).toBe('token_expired');
    expect(expired.headers['www-authenticate']).toBe(
      'Bearer realm="keyward", error="invalid_token", error_description="token expired"',
    );
    expect(
      toHttpProblem(new KeywardError('insufficient_scope', 'x', { details: { scope: 'admin' } })),
    ).toMatchObject({
      status: 403,
      headers: { 'www-authenticate': 'Bearer realm="keyward", error="insufficient_scope", scope="admin"' },
    });
    expect(toHttpProblem(new KeywardError('refresh_token_reused', 'x'))).toMatchObject({
      status: 400,
      error: 'invalid_grant',
    });
  });

  it('never exposes an unknown error', () => {
    expect(toHttpProblem(new Error('secret internals at /srv/app.js:12'))).toEqual({
      status: 500,
      error: 'internal_error',
      message: 'internal error',
      headers: {},
    });
  });

  it('recognises body-parser and Fastify parser errors', () => {
    expect(bodyFailureOf({ type: 'entity.parse.failed', status: 400 })).toBe('malformed');
    expect(bodyFailureOf({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 })).toBe('too_large');
    expect(bodyFailureOf({ code: 'FST_ERR_CTP_SOMETHING_NEW', statusCode: 400 })).toBe('unreadable');
    expect(bodyFailureOf(new Error('boom'))).toBeUndefined();
  });
});

describe('createAuthenticator', () => {
  it('tells a malformed header (400) from a bad token (401), and shares one frozen principal per token', async () => {
    const kw = await createKeywardCore({
      store: createMemoryStore(),
      masterKey: MasterKey.generate().exportText(),
      logger: false,
      audit: false,
      scheduler: false,
    });
    const auth = createAuthenticator(kw);
    const token = kw.jwt.sign({ sub: 'alice', scope: 'read admin' });
    const a = await auth.authenticate({ authorization: `Bearer ${token}` });
    const b = await auth.authenticate({ authorization: `Bearer ${token}` });
    expect(a).toBe(b);
    expect(Object.isFrozen(a) && Object.isFrozen(a.scopes)).toBe(true);
    expect(a.scopes).toEqual(['read', 'admin']);
    await expect(auth.authenticate({ authorization: 'Bearer not*a*token' })).rejects.toMatchObject({
      code: 'invalid_request',
    });
    await expect(auth.authenticate({ authorization: 'Bearer not.a.token' })).rejects.toMatchObject({
      code: 'token_malformed',
    });
    expect(() => auth.authorize(a, { scopes: ['root'] })).toThrow(
      expect.objectContaining({ code: 'insufficient_scope' }),
    );
    await kw.close();
  });
});
