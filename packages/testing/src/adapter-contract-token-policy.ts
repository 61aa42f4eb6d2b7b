// keyward issue #11 ("Token policy"): the policy cases of the HTTP contract, run by
// describeAdapterContract against every example app through a real listening server.
import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';

/** What {@link describeTokenPolicyContract} needs from the running suite. */
export interface TokenPolicyContractContext {
  /** Base URL of the suite's running app; read when a test runs (after the suite's `beforeAll`). */
  url(): string;
  /** The app's legacy `JWT_SECRET`: the cases are signed with this real keyring key, so only the policy can reject them. */
  legacySecret: string;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
  json: any;
}

async function send(
  url: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url + path, {
    method,
    headers,
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

function expectError(reply: Answer, status: number, code: string): void {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.json?.error, reply.text).toBe(code);
  expect(typeof reply.json?.message).toBe('string');
  expect(reply.text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
}

function expectInvalidToken(reply: Answer, code: string): void {
  expectError(reply, 401, code);
  expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer realm="keyward", error="invalid_token"/);
}

/**
 * The token-policy cases of the contract (docs/contract.md, "Errors"): explicit typing (RFC 8725
 * §3.11), duplicate member names and nesting depth in header and payload, and identifiers that are
 * not well-formed Unicode. Called from {@link describeAdapterContract} with its running app.
 *
 * @example
 * ```ts
 * describeTokenPolicyContract({ url: () => app.url, legacySecret: LEGACY_SECRET })
 * ```
 */
export function describeTokenPolicyContract(ctx: TokenPolicyContractContext): void {
  const kid = () => {
    const k = Buffer.from(ctx.legacySecret, 'utf8').toString('base64url');
    return createHash('sha256').update(`{"k":"${k}","kty":"oct"}`).digest('base64url');
  };
  /** Signs exactly this header and payload text (duplicates and all) with the legacy keyring key. */
  const signRaw = (headerJson: string, payloadJson: string) => {
    const input = `${Buffer.from(headerJson).toString('base64url')}.${Buffer.from(payloadJson).toString('base64url')}`;
    return `${input}.${createHmac('sha256', ctx.legacySecret).update(input).digest('base64url')}`;
  };
  const header = (typ: string | undefined) =>
    JSON.stringify({ alg: 'HS256', ...(typ === undefined ? {} : { typ }), kid: kid() });
  const claims = (extra: Record<string, unknown> = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return JSON.stringify({ sub: 'alice', scope: 'read', iat: now, exp: now + 600, ...extra });
  };
  const me = (token: string) => send(ctx.url(), 'GET', '/me', token);

  describe('token policy (keyward #11)', () => {
    it("accepts the legacy key's tokens typed at+jwt and JWT (the cases below differ in one thing only)", async () => {
      for (const typ of ['at+jwt', 'JWT']) {
        const r = await me(signRaw(header(typ), claims()));
        expect(r.status, r.text).toBe(200);
        expect(r.json.sub).toBe('alice');
      }
    });

    it('regression #11: a wrong typ (invite+jwt) is 401 token_claim_invalid', async () => {
      expectInvalidToken(await me(signRaw(header('invite+jwt'), claims())), 'token_claim_invalid');
    });

    it('regression #11: a missing typ is 401 token_claim_invalid', async () => {
      expectInvalidToken(await me(signRaw(header(undefined), claims())), 'token_claim_invalid');
    });

    it('regression #11: a duplicate member in the payload is 401 token_malformed, not last-wins', async () => {
      const now = Math.floor(Date.now() / 1000);
      const dupSub = `{"sub":"alice","scope":"read","iat":${now},"exp":${now + 600},"sub":"admin"}`;
      expectInvalidToken(await me(signRaw(header('at+jwt'), dupSub)), 'token_malformed');
      // Last-wins would grant admin: the answer is a bad token, not a 200 or a 403.
      const dupScope = `{"sub":"alice","scope":"read","iat":${now},"exp":${now + 600},"scope":"read admin"}`;
      const r = await send(ctx.url(), 'GET', '/admin/keys', signRaw(header('at+jwt'), dupScope));
      expectInvalidToken(r, 'token_malformed');
    });

    it('regression #11: a duplicate member in the header is 401 token_malformed', async () => {
      const dupAlg = `{"alg":"none","typ":"at+jwt","kid":"${kid()}","alg":"HS256"}`;
      expectInvalidToken(await me(signRaw(dupAlg, claims())), 'token_malformed');
      const dupTyp = `{"alg":"HS256","typ":"invite+jwt","kid":"${kid()}","typ":"at+jwt"}`;
      expectInvalidToken(await me(signRaw(dupTyp, claims())), 'token_malformed');
    });

    it('regression #11: 33-level nesting in the payload or header is 401 token_malformed; 32 levels pass', async () => {
      const nested = (levels: number) => `${'['.repeat(levels - 1)}${']'.repeat(levels - 1)}`;
      const payload = (levels: number) => claims().replace(/^\{/, `{"n":${nested(levels)},`);
      expectInvalidToken(await me(signRaw(header('at+jwt'), payload(33))), 'token_malformed');
      expect((await me(signRaw(header('at+jwt'), payload(32)))).status).toBe(200);
      const deepHeader = `{"alg":"HS256","typ":"at+jwt","kid":"${kid()}","x":${nested(33)}}`;
      expectInvalidToken(await me(signRaw(deepHeader, claims())), 'token_malformed');
    });

    it('regression #11: a subject with a lone surrogate gets 400 invalid_request from secrets and API keys, never a 5xx', async () => {
      // The legacy key signs it, so the token is valid: only the identifier check can refuse it.
      const token = signRaw(header('at+jwt'), claims({ sub: 'alice\uD800' }));
      expect((await me(token)).status).toBe(200);
      expectError(
        await send(ctx.url(), 'PUT', '/secrets/github', token, { value: 'v' }),
        400,
        'invalid_request',
      );
      expectError(await send(ctx.url(), 'GET', '/secrets/github', token), 400, 'invalid_request');
      expectError(await send(ctx.url(), 'GET', '/api-keys', token), 400, 'invalid_request');
      expectError(await send(ctx.url(), 'POST', '/api-keys', token, { name: 'ci' }), 400, 'invalid_request');
    });

    it('regression #11: an API-key name with a lone surrogate is 400 invalid_request', async () => {
      const token = signRaw(header('at+jwt'), claims());
      const r = await send(ctx.url(), 'POST', '/api-keys', token, '{"name":"ci\\ud800"}');
      expectError(r, 400, 'invalid_request');
    });
  });
}
