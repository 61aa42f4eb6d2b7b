import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, createHmac, createPublicKey, generateKeyPairSync, sign as signBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRedisStore, MasterKey } from '@keyward/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeCookieModeContract } from './adapter-contract-cookie.js';
import { describeDataAtRestContract } from './adapter-contract-data.js';
import { describeHttpSurfaceContract } from './adapter-contract-http-surface.js';
import { describeRateLimitContract } from './adapter-contract-ratelimit.js';
import { describeTokenPolicyContract } from './adapter-contract-token-policy.js';
import { describeWithRedis, redisTestUrl } from './redis.js';

/** A running app under test. */
export interface RunningApp {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Stops the app gracefully; rejects if it does not exit cleanly. */
  stop(): Promise<void>;
  /** What the app printed so far (the last 20 kB of stdout and stderr), when the runner keeps it. */
  output?(): string;
}

/** How {@link describeAdapterContract} starts an app: `env` holds the contract's variables. */
export interface AdapterContractTarget {
  start(env: Record<string, string>): Promise<RunningApp>;
  /** Refresh-token reuse interval of the app, in ms. Default 2000 (keyward's default). */
  refreshReuseIntervalMs?: number;
  /** Redis logical database for the cross-instance cases, so suites of several adapters never share a keyring. Default 1. */
  redisDb?: number;
}

const CONTRACT_ENV = [
  'PORT',
  'HOST',
  'KEYWARD_DIR',
  'REDIS_URL',
  'DATABASE_URL',
  'KEYWARD_MASTER_KEY',
  'JWT_SECRET',
];
const STOP_TIMEOUT_MS = 10_000;

/**
 * Starts an example app as a real process (`node --conditions=@keyward/source --import tsx
 * src/main.ts` in `dir`, what its `pnpm start` runs) and resolves once it prints
 * `listening on http://…` (30 s at most). Only `env` configures it: keyward variables of the
 * test process are not inherited.
 *
 * @example
 * ```ts
 * const app = await startExampleProcess('examples/express', { PORT: '0', KEYWARD_DIR: dir })
 * await fetch(`${app.url}/health/live`)
 * await app.stop()
 * ```
 */
export function startExampleProcess(dir: string, env: Record<string, string>): Promise<RunningApp> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !CONTRACT_ENV.includes(k) && !k.startsWith('KEYWARD_') && k !== 'DEMO_USERS',
    ),
  );
  const child = spawn(process.execPath, ['--conditions=@keyward/source', '--import', 'tsx', 'src/main.ts'], {
    cwd: dir,
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-20_000);
  };
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('no "listening on" line within 30 s')), 30_000);
    function fail(err: Error) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n--- output of ${dir} ---\n${output}`));
    }
    const early = (code: number | null) =>
      fail(new Error(`${dir} exited with code ${code} before listening`));
    child.once('exit', early);
    child.stdout?.on('data', (chunk: Buffer) => {
      keep(chunk);
      const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
      if (!url) return;
      clearTimeout(timer);
      child.removeListener('exit', early);
      resolve({ url, stop: () => stopProcess(child, exited), output: () => output });
    });
  });
}

/** SIGTERM, then SIGKILL after 10 s; rejects unless the app shut down cleanly (exit code 0). */
async function stopProcess(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
  if (child.exitCode !== 0) {
    throw new Error(
      `the app did not shut down cleanly on SIGTERM (code ${child.exitCode}, signal ${child.signalCode})`,
    );
  }
}

// jose is the independent verifier; it is a dependency of @keyward/core, resolved from there.
type Jose = {
  createLocalJWKSet(jwks: { keys: object[] }): unknown;
  jwtVerify(token: string, keys: unknown): Promise<{ payload: Record<string, unknown> }>;
};
async function loadJose(): Promise<Jose> {
  const fromCore = createRequire(createRequire(import.meta.url).resolve('@keyward/core/package.json'));
  return (await import(pathToFileURL(fromCore.resolve('jose')).href)) as Jose;
}

/** One HTTP answer, read whole. */
export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
  json: any;
}

interface CallOptions {
  token?: string;
  apiKey?: string;
  json?: unknown;
  /** Sent as `application/x-www-form-urlencoded`. */
  form?: Record<string, string>;
  body?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

async function call(base: string, method: string, path: string, o: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  if (o.apiKey !== undefined) headers['x-api-key'] = o.apiKey;
  let body = o.body;
  if (o.json !== undefined) body = JSON.stringify(o.json);
  if (o.form !== undefined) body = new URLSearchParams(o.form).toString();
  if (body !== undefined) {
    headers['content-type'] =
      o.contentType ?? (o.form !== undefined ? 'application/x-www-form-urlencoded' : 'application/json');
  }
  const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const headerOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString());
const future = () => Math.floor(Date.now() / 1000) + 600;

/**
 * Asserts the contract's error answer: status, stable code, JSON `{error, message}`, no stack trace.
 *
 * @example
 * ```ts
 * expectProblem(await call(url, 'GET', '/me'), 401, 'missing_credentials')
 * ```
 */
export function expectProblem(reply: Reply, status: number, code?: string): void {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.headers.get('content-type') ?? '').toMatch(/^application\/json/);
  expect(typeof reply.json?.error).toBe('string');
  expect(typeof reply.json?.message).toBe('string');
  if (code !== undefined) expect(reply.json.error).toBe(code);
  expect(reply.text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
}

function expectInvalidToken(reply: Reply, code: string): void {
  expectProblem(reply, 401, code);
  expect(reply.headers.get('www-authenticate')).toMatch(
    /^Bearer realm="keyward", error="invalid_token", error_description="[^"]*"$/,
  );
}

const DEMO_USERS = 'alice:alice-password:read,admin:admin-password:read admin,rs:rs-password:introspect';
/** The main app's legacy `JWT_SECRET`: lets the suite sign tokens the app accepts (an expired one). */
const LEGACY_SECRET = 'contract-suite-legacy-secret';

/** An HS256 token under the legacy `JWT_SECRET` key (kid: RFC 7638 thumbprint of the secret). */
function legacyToken(claims: Record<string, unknown>): string {
  const k = Buffer.from(LEGACY_SECRET, 'utf8').toString('base64url');
  const kid = createHash('sha256').update(`{"k":"${k}","kty":"oct"}`).digest('base64url');
  const input = `${b64url({ alg: 'HS256', typ: 'at+jwt', kid })}.${b64url(claims)}`;
  return `${input}.${createHmac('sha256', LEGACY_SECRET).update(input).digest('base64url')}`;
}

/**
 * The HTTP contract (docs/contract.md) as one vitest suite, run against a real server. Every
 * example app and framework package must pass it unchanged. Cross-instance cases need `REDIS_URL`.
 *
 * @example
 * ```ts
 * describeAdapterContract('express', { start: (env) => startExampleProcess('examples/express', env) })
 * ```
 */
export function describeAdapterContract(name: string, target: AdapterContractTarget): void {
  describeDataAtRestContract(name, target);
  const masterKey = MasterKey.generate().exportText();
  const dirs: string[] = [];
  const envFor = (extra: Record<string, string> = {}) => {
    const dir = mkdtempSync(join(tmpdir(), `keyward-${name}-`));
    dirs.push(dir);
    return {
      PORT: '0',
      HOST: '127.0.0.1',
      KEYWARD_DIR: dir,
      KEYWARD_MASTER_KEY: masterKey,
      DEMO_USERS,
      ...extra,
    };
  };
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  describeHttpSurfaceContract(name, target);

  describeRateLimitContract(name, target, envFor);
  describe(`adapter contract: ${name}`, () => {
    let app: RunningApp;
    let req: (method: string, path: string, o?: CallOptions) => Promise<Reply>;
    const login = async (user: 'alice' | 'admin' | 'rs' = 'alice') => {
      const r = await req('POST', '/auth/login', { json: { username: user, password: `${user}-password` } });
      expect(r.status, r.text).toBe(200);
      return r.json as { access_token: string; refresh_token: string };
    };
    beforeAll(async () => {
      app = await target.start(envFor({ JWT_SECRET: LEGACY_SECRET }));
      req = (method, path, o) => call(app.url, method, path, o);
    });
    afterAll(async () => app?.stop());

    describe('login and /me', () => {
      it('logs in with the OAuth token response shape, never cached', async () => {
        const r = await req('POST', '/auth/login', {
          json: { username: 'alice', password: 'alice-password' },
        });
        expect(r.status).toBe(200);
        expect(r.json).toEqual({
          access_token: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/),
          refresh_token: expect.any(String),
          token_type: 'Bearer',
          expires_in: expect.any(Number),
        });
        expect(r.json.expires_in).toBeGreaterThan(0);
        expect(r.headers.get('cache-control')).toContain('no-store');
      });
      it('rejects a wrong password with 401 and a malformed body with 400', async () => {
        expectProblem(
          await req('POST', '/auth/login', { json: { username: 'alice', password: 'nope' } }),
          401,
          'invalid_credentials',
        );
        expectProblem(
          await req('POST', '/auth/login', { json: { username: 'nobody', password: 'x' } }),
          401,
          'invalid_credentials',
        );
        for (const json of [{}, { username: 'alice' }, { username: 1, password: {} }, [], 'alice']) {
          expectProblem(await req('POST', '/auth/login', { json }), 400, 'invalid_request');
        }
      });
      it('answers /me for a bearer token', async () => {
        const { access_token } = await login();
        const r = await req('GET', '/me', { token: access_token });
        expect(r.status).toBe(200);
        expect(r.json).toEqual({ sub: 'alice', scopes: ['read'], auth: 'jwt' });
      });
      it('answers 401 without credentials, with a challenge without error attribute', async () => {
        const r = await req('GET', '/me');
        expectProblem(r, 401, 'missing_credentials');
        expect(r.headers.get('www-authenticate')).toBe('Bearer realm="keyward"');
      });
      it('answers 400 invalid_request for a malformed Authorization header', async () => {
        for (const authorization of ['Basic YWxpY2U6eA==', 'Bearer', 'Bearer a b', 'Bearer !!!']) {
          const r = await req('GET', '/me', { headers: { authorization } });
          expectProblem(r, 400, 'invalid_request');
          expect(r.headers.get('www-authenticate')).toMatch(
            /^Bearer realm="keyward", error="invalid_request"/,
          );
        }
      });
      it('accepts the Bearer scheme in any case', async () => {
        const { access_token } = await login();
        const r = await req('GET', '/me', { headers: { authorization: `bEaReR ${access_token}` } });
        expect(r.status).toBe(200);
      });
    });

    describe('refresh and logout', () => {
      it('refresh returns a new pair that works', async () => {
        const first = await login();
        const r = await req('POST', '/auth/refresh', { json: { refresh_token: first.refresh_token } });
        expect(r.status, r.text).toBe(200);
        expect(r.headers.get('cache-control')).toContain('no-store');
        expect(r.json.refresh_token).not.toBe(first.refresh_token);
        expect(r.json.access_token).not.toBe(first.access_token);
        expect((await req('GET', '/me', { token: r.json.access_token })).json.sub).toBe('alice');
      });
      it('reuse of a spent refresh token after the reuse interval revokes the whole family', async () => {
        const first = await login();
        const second = (await req('POST', '/auth/refresh', { json: { refresh_token: first.refresh_token } }))
          .json;
        await new Promise((r) => setTimeout(r, (target.refreshReuseIntervalMs ?? 2000) + 150));
        const reuse = await req('POST', '/auth/refresh', { json: { refresh_token: first.refresh_token } });
        expectProblem(reuse, 400, 'invalid_grant');
        expect(reuse.headers.get('cache-control')).toContain('no-store');
        const successor = await req('POST', '/auth/refresh', {
          json: { refresh_token: second.refresh_token },
        });
        expectProblem(successor, 400, 'invalid_grant');
      });
      it('rejects unknown refresh tokens with invalid_grant and malformed bodies with invalid_request', async () => {
        expectProblem(
          await req('POST', '/auth/refresh', { json: { refresh_token: 'not-a-real-token' } }),
          400,
          'invalid_grant',
        );
        for (const json of [{}, { refresh_token: 42 }, { refresh_token: '' }, ['x']]) {
          expectProblem(await req('POST', '/auth/refresh', { json }), 400, 'invalid_request');
        }
      });
      it('logout revokes the access token and the refresh family', async () => {
        const pair = await login();
        const r = await req('POST', '/auth/logout', {
          token: pair.access_token,
          json: { refresh_token: pair.refresh_token },
        });
        expect(r.status, r.text).toBe(204);
        expectInvalidToken(await req('GET', '/me', { token: pair.access_token }), 'token_revoked');
        expectProblem(
          await req('POST', '/auth/refresh', { json: { refresh_token: pair.refresh_token } }),
          400,
          'invalid_grant',
        );
      });
      it('logout needs a bearer token', async () => {
        expectProblem(await req('POST', '/auth/logout', { json: {} }), 401, 'missing_credentials');
      });
    });

    describe('scopes and admin keys', () => {
      it('answers 403 insufficient_scope to a token without the admin scope', async () => {
        const { access_token } = await login('alice');
        const r = await req('GET', '/admin/keys', { token: access_token });
        expectProblem(r, 403, 'insufficient_scope');
        expect(r.headers.get('www-authenticate')).toBe(
          'Bearer realm="keyward", error="insufficient_scope", scope="admin"',
        );
        expectProblem(await req('POST', '/admin/keys/rotate', { token: access_token, json: {} }), 403);
        expectProblem(await req('GET', '/admin/keys'), 401, 'missing_credentials');
      });
      it('lists keys without key material', async () => {
        const { access_token } = await login('admin');
        const r = await req('GET', '/admin/keys', { token: access_token });
        expect(r.status).toBe(200);
        expect(r.json.length).toBeGreaterThanOrEqual(3);
        for (const key of r.json) {
          expect(key).toMatchObject({
            kid: expect.any(String),
            use: expect.any(String),
            state: expect.any(String),
          });
          expect(typeof key.createdAt).toBe('string');
        }
        expect(r.text).not.toMatch(/"(d|k|p|q|material|sealed|secret)"\s*:/);
      });
      it('rotates the signing key: new tokens use the new kid, old tokens still verify, the JWKS has both', async () => {
        const before = await login('admin');
        const r = await req('POST', '/admin/keys/rotate', { token: before.access_token, json: {} });
        expect(r.status, r.text).toBe(200);
        const { kid } = r.json;
        expect(typeof r.json.unpublished).toBe('boolean');
        const after = await login('alice');
        expect(headerOf(after.access_token).kid).toBe(kid);
        expect((await req('GET', '/me', { token: before.access_token })).status).toBe(200);
        const jwks = (await req('GET', '/.well-known/jwks.json')).json;
        const kids = jwks.keys.map((k: { kid: string }) => k.kid);
        expect(kids).toContain(kid);
        expect(kids).toContain(headerOf(before.access_token).kid);
        expectProblem(
          await req('POST', '/admin/keys/rotate', { token: before.access_token, json: { use: 'nope' } }),
          400,
          'invalid_request',
        );
      });
      it('revokes a key: its tokens get 401 key_revoked and it leaves the JWKS', async () => {
        const admin = await login('admin');
        const victim = headerOf(admin.access_token).kid;
        const r = await req('POST', `/admin/keys/${victim}/revoke`, {
          token: admin.access_token,
          json: { reason: 'contract test' },
        });
        expect(r.status, r.text).toBe(200);
        expect(r.json.revoked).toBe(victim);
        expect(typeof r.json.replacement).toBe('string');
        expect(typeof r.json.unpublished).toBe('boolean');
        expectInvalidToken(await req('GET', '/me', { token: admin.access_token }), 'key_revoked');
        const kids = (await req('GET', '/.well-known/jwks.json')).json.keys.map(
          (k: { kid: string }) => k.kid,
        );
        expect(kids).not.toContain(victim);
        expect(kids).toContain(r.json.replacement);
        const fresh = await login('admin');
        expect(headerOf(fresh.access_token).kid).toBe(r.json.replacement);
        const unknown = await req('POST', '/admin/keys/no-such-kid/revoke', {
          token: fresh.access_token,
          json: { reason: 'x' },
        });
        expectProblem(unknown, 404, 'not_found');
        expectProblem(
          await req('POST', `/admin/keys/${r.json.replacement}/revoke`, {
            token: fresh.access_token,
            json: {},
          }),
          400,
          'invalid_request',
        );
      });
    });

    describe('API keys and secrets', () => {
      it('creates, lists, uses and deletes an API key; the secret is shown only once', async () => {
        const { access_token } = await login();
        const created = await req('POST', '/api-keys', {
          token: access_token,
          json: { name: 'ci', scopes: ['read'] },
        });
        expect(created.status, created.text).toBe(201);
        expect(created.json).toMatchObject({
          id: expect.any(String),
          name: 'ci',
          scopes: ['read'],
          expiresAt: null,
        });
        const { id, key } = created.json;
        expect(key).toMatch(/^kw_/);
        const list = await req('GET', '/api-keys', { token: access_token });
        expect(list.status).toBe(200);
        expect(list.json.map((k: { id: string }) => k.id)).toContain(id);
        expect(list.text).not.toContain(key);
        const me = await req('GET', '/me', { apiKey: key });
        expect(me.json).toEqual({ sub: 'alice', scopes: ['read'], auth: 'api_key' });
        const other = await login('admin');
        expectProblem(
          await req('DELETE', `/api-keys/${id}`, { token: other.access_token }),
          404,
          'not_found',
        );
        expect((await req('DELETE', `/api-keys/${id}`, { token: access_token })).status).toBe(204);
        const revoked = await req('GET', '/me', { apiKey: key });
        expectProblem(revoked, 401);
        expect(revoked.json.error).toMatch(/^api_key_/);
        expectProblem(await req('DELETE', `/api-keys/${id}x`, { token: access_token }), 404, 'not_found');
      });
      it('rejects bad API-key requests with 400, 401 and 403', async () => {
        const { access_token } = await login();
        for (const json of [{}, { name: 'x', scopes: 'read' }, { name: 'x', expiresIn: -1 }, { name: 7 }]) {
          expectProblem(
            await req('POST', '/api-keys', { token: access_token, json }),
            400,
            'invalid_request',
          );
        }
        expectProblem(
          await req('POST', '/api-keys', { token: access_token, json: { name: 'x', scopes: ['admin'] } }),
          403,
          'insufficient_scope',
        );
        expectProblem(await req('GET', '/api-keys'), 401, 'missing_credentials');
        expectProblem(await req('GET', '/me', { apiKey: 'kw_garbage' }), 401);
      });
      it('stores secrets per subject', async () => {
        const alice = await login('alice');
        const put = await req('PUT', '/secrets/github-token', {
          token: alice.access_token,
          json: { value: 's3cr3t' },
        });
        expect(put.status, put.text).toBe(204);
        const got = await req('GET', '/secrets/github-token', { token: alice.access_token });
        expect(got.json).toEqual({ name: 'github-token', value: 's3cr3t' });
        const admin = await login('admin');
        expectProblem(
          await req('GET', '/secrets/github-token', { token: admin.access_token }),
          404,
          'not_found',
        );
        expectProblem(
          await req('GET', '/secrets/nothing-here', { token: alice.access_token }),
          404,
          'not_found',
        );
        expectProblem(
          await req('PUT', '/secrets/x', { token: alice.access_token, json: { value: 1 } }),
          400,
          'invalid_request',
        );
        expectProblem(
          await req('GET', '/secrets/a%20b', { token: alice.access_token }),
          400,
          'invalid_request',
        );
        expectProblem(await req('GET', '/secrets/github-token'), 401, 'missing_credentials');
      });
    });

    describe('JWKS, health, metrics', () => {
      it('publishes a JWKS that verifies tokens on its own, with ETag, 304 and max-age', async () => {
        const { access_token } = await login();
        const r = await req('GET', '/.well-known/jwks.json');
        expect(r.status).toBe(200);
        expect(r.text).not.toMatch(/"d"\s*:/);
        const jose = await loadJose();
        const { payload } = await jose.jwtVerify(access_token, jose.createLocalJWKSet(r.json));
        expect(payload.sub).toBe('alice');
        expect(Number(/max-age=(\d+)/.exec(r.headers.get('cache-control') ?? '')?.[1])).toBeGreaterThan(0);
        const etag = r.headers.get('etag');
        expect(etag).toBeTruthy();
        const again = await req('GET', '/.well-known/jwks.json', {
          headers: { 'if-none-match': etag ?? '' },
        });
        expect(again.status).toBe(304);
        // Not `public`: shared caches must not keep a revoked key (docs/downstream.md).
        expect(r.headers.get('cache-control')).toMatch(/^private, max-age=\d+$/);
      });
      it('serves both discovery documents naming the issuer its tokens carry', async () => {
        const { access_token } = await login();
        const [, payload] = access_token.split('.') as [string, string];
        const { iss } = JSON.parse(Buffer.from(payload, 'base64url').toString());
        // Without KEYWARD_ISSUER the example's issuer is the address it listens on.
        expect(iss).toBe(app.url);
        for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
          const r = await req('GET', path);
          expect(r.status, path).toBe(200);
          expect(r.json, path).toMatchObject({
            issuer: iss,
            jwks_uri: `${iss}/.well-known/jwks.json`,
            introspection_endpoint: `${iss}/oauth/introspect`,
            revocation_endpoint: `${iss}/oauth/revoke`,
          });
        }
      });
      it('serves health as application/health+json', async () => {
        const live = await req('GET', '/health/live');
        expect(live.status).toBe(200);
        expect(live.headers.get('content-type')).toMatch(/^application\/health\+json/);
        expect(JSON.parse(live.text)).toEqual({ status: 'pass' });
        const ready = await req('GET', '/health/ready');
        expect(ready.status).toBe(200);
        expect(ready.headers.get('content-type')).toMatch(/^application\/health\+json/);
        const report = JSON.parse(ready.text);
        expect(['pass', 'warn']).toContain(report.status);
        expect(typeof report.checks).toBe('object');
      });
      it('serves Prometheus metrics', async () => {
        const r = await req('GET', '/metrics');
        expect(r.status).toBe(200);
        expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
        expect(r.text).toMatch(/^# HELP keyward_/m);
      });
    });

    describe('OAuth token introspection (RFC 7662) and revocation (RFC 7009)', () => {
      const introspect = async (token: string, o: CallOptions = {}) => {
        const r = await req('POST', '/oauth/introspect', {
          token: (await login('rs')).access_token,
          ...o,
          form: { token },
        });
        expect(r.status, r.text).toBe(200);
        expect(r.headers.get('content-type') ?? '').toMatch(/^application\/json/);
        expect(r.headers.get('cache-control')).toContain('no-store');
        return r.json as Record<string, unknown>;
      };
      const inactive = { active: false };

      it('describes an active access token; after logout it is inactive and nothing else', async () => {
        const pair = await login('alice');
        const body = await introspect(pair.access_token);
        expect(body).toMatchObject({ active: true, sub: 'alice', scope: 'read', token_type: 'Bearer' });
        expect(body.exp).toBeGreaterThan(Date.now() / 1000);
        expect(typeof body.iat).toBe('number');
        expect(body).not.toHaveProperty('client_id');
        const out = await req('POST', '/auth/logout', { token: pair.access_token, json: {} });
        expect(out.status, out.text).toBe(204);
        expect(await introspect(pair.access_token)).toEqual(inactive);
      });
      it('turns the access tokens of a family revoked by refresh reuse inactive', async () => {
        const first = await login('alice');
        const second = (await req('POST', '/auth/refresh', { json: { refresh_token: first.refresh_token } }))
          .json;
        expect((await introspect(second.access_token)).active).toBe(true);
        await new Promise((r) => setTimeout(r, (target.refreshReuseIntervalMs ?? 2000) + 150));
        const reuse = await req('POST', '/auth/refresh', { json: { refresh_token: first.refresh_token } });
        expectProblem(reuse, 400, 'invalid_grant');
        expect(await introspect(second.access_token)).toEqual(inactive);
        expect(await introspect(second.refresh_token)).toEqual(inactive);
      });
      it("turns a revoked signing key's tokens inactive", async () => {
        const admin = await login('admin');
        const alice = await login('alice');
        const kid = headerOf(alice.access_token).kid;
        expect((await introspect(alice.access_token)).active).toBe(true);
        const r = await req('POST', `/admin/keys/${kid}/revoke`, {
          token: admin.access_token,
          json: { reason: 'introspection test' },
        });
        expect(r.status, r.text).toBe(200);
        expect(await introspect(alice.access_token)).toEqual(inactive);
      });
      it('answers an expired token inactive (and the same token unexpired active)', async () => {
        const now = Math.floor(Date.now() / 1000);
        const live = legacyToken({ sub: 'alice', scope: 'read', jti: 'live-1', iat: now, exp: now + 600 });
        expect(await introspect(live)).toMatchObject({ active: true, sub: 'alice' });
        const expired = legacyToken({
          sub: 'alice',
          scope: 'read',
          jti: 'old-1',
          iat: now - 9000,
          exp: now - 7200,
        });
        expect(await introspect(expired)).toEqual(inactive);
      });
      it('describes a refresh token without spending it: a refresh with it still works', async () => {
        const pair = await login('alice');
        expect(await introspect(pair.refresh_token)).toMatchObject({
          active: true,
          sub: 'alice',
          scope: 'read',
          token_type: 'refresh_token',
        });
        await introspect(pair.refresh_token);
        const r = await req('POST', '/auth/refresh', { json: { refresh_token: pair.refresh_token } });
        expect(r.status, r.text).toBe(200);
        expect(await introspect(pair.refresh_token)).toEqual(inactive);
        expect((await introspect(r.json.refresh_token)).active).toBe(true);
      });
      it('describes an API key, and garbage as inactive', async () => {
        const { access_token } = await login('alice');
        const created = await req('POST', '/api-keys', {
          token: access_token,
          json: { name: 'rs-test', scopes: ['read'] },
        });
        expect(created.status, created.text).toBe(201);
        expect(await introspect(created.json.key)).toEqual({
          active: true,
          sub: 'alice',
          scope: 'read',
          // The example's issuer: configured, or the address it listens on.
          iss: expect.stringMatching(/^https?:\/\//),
          token_type: 'api_key',
        });
        for (const garbage of ['garbage', 'a.b.c', 'rt_nope', 'kw_nope', '%00\u0000']) {
          expect(await introspect(garbage)).toEqual(inactive);
        }
      });
      it('needs a credential (401) holding scope introspect or admin (403)', async () => {
        const alice = await login('alice');
        const form = { token: alice.access_token };
        const none = await req('POST', '/oauth/introspect', { form });
        expectProblem(none, 401, 'missing_credentials');
        const forbidden = await req('POST', '/oauth/introspect', { token: alice.access_token, form });
        expectProblem(forbidden, 403, 'insufficient_scope');
        expect(forbidden.headers.get('www-authenticate')).toBe(
          'Bearer realm="keyward", error="insufficient_scope", scope="introspect"',
        );
        const asAdmin = await req('POST', '/oauth/introspect', {
          token: (await login('admin')).access_token,
          form,
        });
        expect(asAdmin.json).toMatchObject({ active: true, sub: 'alice' });
      });
      it('revokes a refresh token: its family is gone, its access tokens inactive', async () => {
        const pair = await login('alice');
        const r = await req('POST', '/oauth/revoke', {
          token: pair.access_token,
          form: { token: pair.refresh_token, token_type_hint: 'refresh_token' },
        });
        expect(r.status, r.text).toBe(200);
        expect(r.headers.get('cache-control')).toContain('no-store');
        expect(await introspect(pair.access_token)).toEqual(inactive);
        expect(await introspect(pair.refresh_token)).toEqual(inactive);
        expectProblem(
          await req('POST', '/auth/refresh', { json: { refresh_token: pair.refresh_token } }),
          400,
          'invalid_grant',
        );
      });
      it("revokes an access token; an unknown token gets 200; another subject's token is refused", async () => {
        const pair = await login('alice');
        const other = await login('alice');
        const r = await req('POST', '/oauth/revoke', {
          token: other.access_token,
          form: { token: pair.access_token },
        });
        expect(r.status, r.text).toBe(200);
        expect(await introspect(pair.access_token)).toEqual(inactive);
        const unknown = await req('POST', '/oauth/revoke', {
          token: other.access_token,
          form: { token: 'no-such-token' },
        });
        expect(unknown.status, unknown.text).toBe(200);
        const admin = await login('admin');
        const refused = await req('POST', '/oauth/revoke', {
          token: other.access_token,
          form: { token: admin.refresh_token },
        });
        expectProblem(refused, 403, 'insufficient_scope');
        expect((await introspect(admin.refresh_token)).active).toBe(true);
        expectProblem(
          await req('POST', '/oauth/revoke', { form: { token: 'x' } }),
          401,
          'missing_credentials',
        );
      });
      it('answers bad input with a clean 400 invalid_request: no token, a JSON body, a huge token', async () => {
        const rs = (await login('rs')).access_token;
        for (const path of ['/oauth/introspect', '/oauth/revoke']) {
          const cases: CallOptions[] = [
            { form: {} },
            { form: { token: '' } },
            { body: 'token=a&token=b', contentType: 'application/x-www-form-urlencoded' },
            { json: { token: rs } },
            { body: `token=${rs}`, contentType: 'text/plain' },
            { form: { token: 'a'.repeat(20_000) } },
            {},
          ];
          for (const o of cases) {
            const r = await req('POST', path, { token: rs, ...o });
            expectProblem(r, 400, 'invalid_request');
            expect(r.text).not.toContain(rs);
          }
        }
      });
    });

    describe('hostile requests', () => {
      it('rejects alg "none", HS256 signed with the public key, a tampered payload and unknown keys', async () => {
        const { access_token } = await login('alice');
        const [h, p, s] = access_token.split('.') as [string, string, string];
        const header = headerOf(access_token);
        const claims = {
          ...JSON.parse(Buffer.from(p, 'base64url').toString()),
          scope: 'read admin',
          exp: future(),
        };
        const none = `${b64url({ ...header, alg: 'none' })}.${b64url(claims)}.`;
        // An unsigned JWS has no signature to check: core rejects it as malformed before any key lookup.
        expectInvalidToken(await req('GET', '/admin/keys', { token: none }), 'token_malformed');

        const jwk = (await req('GET', '/.well-known/jwks.json')).json.keys.find(
          (k: { kid: string }) => k.kid === header.kid,
        );
        const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
        const hsInput = `${b64url({ ...header, alg: 'HS256' })}.${b64url(claims)}`;
        const hs = `${hsInput}.${createHmac('sha256', pem).update(hsInput).digest('base64url')}`;
        expectInvalidToken(await req('GET', '/admin/keys', { token: hs }), 'token_invalid');

        const tampered = `${h}.${b64url(claims)}.${s}`;
        expectInvalidToken(await req('GET', '/admin/keys', { token: tampered }), 'token_signature_invalid');

        // The examples sign with ES256 by default: a token of that algorithm under a foreign key.
        expect(header.alg).toBe('ES256');
        const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        for (const kid of ['unknown-kid', header.kid]) {
          const input = `${b64url({ alg: 'ES256', typ: 'at+jwt', kid })}.${b64url(claims)}`;
          const signature = signBytes('sha256', Buffer.from(input), {
            key: privateKey,
            dsaEncoding: 'ieee-p1363',
          });
          const forged = `${input}.${signature.toString('base64url')}`;
          const r = await req('GET', '/me', { token: forged });
          expectInvalidToken(r, kid === header.kid ? 'token_signature_invalid' : 'token_invalid');
        }
      });
      it('answers a huge header with 431 or 400 and a huge token with 4xx, never 5xx', async () => {
        const huge = await fetch(`${app.url}/me`, {
          headers: { authorization: `Bearer ${'a'.repeat(40_000)}` },
        });
        expect([400, 431]).toContain(huge.status);
        const big = await req('GET', '/me', { token: `${'a'.repeat(6000)}.${'b'.repeat(6000)}.c` });
        expect(big.status).toBeGreaterThanOrEqual(400);
        expect(big.status).toBeLessThan(500);
        expect(big.text).not.toMatch(/\n\s+at /);
      });
      it('answers garbage bodies, wrong types and wrong content types with 400 invalid_request', async () => {
        const { access_token } = await login();
        const bodies = ['{', '{"username":', 'null', '"text"', '\u0000\u0001', '{"a":1}}'];
        const targets: Array<[string, string]> = [
          ['POST', '/auth/login'],
          ['POST', '/auth/refresh'],
          ['POST', '/api-keys'],
          ['PUT', '/secrets/some-name'],
        ];
        for (const [method, path] of targets) {
          for (const body of bodies) {
            expectProblem(await req(method, path, { token: access_token, body }), 400, 'invalid_request');
          }
          const form = await req(method, path, {
            token: access_token,
            body: 'a=b',
            contentType: 'text/plain',
          });
          expectProblem(form, 400, 'invalid_request');
        }
        const polluted = '{"__proto__":{"admin":true},"username":"alice","password":"x"}';
        expectProblem(await req('POST', '/auth/login', { body: polluted }), 401, 'invalid_credentials');
      });
      it('answers two credentials at once with 400 invalid_request', async () => {
        const { access_token } = await login();
        const r = await req('GET', '/me', { token: access_token, apiKey: 'kw_whatever' });
        expectProblem(r, 400, 'invalid_request');
      });
    });
    describeTokenPolicyContract({ url: () => app.url, legacySecret: LEGACY_SECRET });
  });

  describeCookieModeContract(name, target, envFor);

  describeWithRedis(`adapter contract across instances: ${name}`, () => {
    const redisUrl = () => {
      const url = new URL(redisTestUrl() ?? '');
      url.pathname = `/${target.redisDb ?? 1}`;
      return url.toString();
    };
    // The suite owns its logical database: wipe keyward's keys before (a previous run's keyring is
    // sealed with another master key) and after.
    const wipe = async () => {
      const store = createRedisStore({ url: redisUrl() });
      try {
        for (let page = await store.scan(''); ; page = await store.scan('', { cursor: page.cursor ?? '' })) {
          await Promise.all(page.entries.map((e) => store.delete(e.key)));
          if (!page.cursor) break;
        }
      } finally {
        await store.close();
      }
    };
    let a: RunningApp;
    let b: RunningApp;
    beforeAll(async () => {
      await wipe();
      a = await target.start(envFor({ REDIS_URL: redisUrl() }));
      b = await target.start(envFor({ REDIS_URL: redisUrl() }));
    });
    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
      await wipe();
    });
    const within = async (ms: number, check: () => Promise<boolean>) => {
      const until = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > until) return false;
        await new Promise((r) => setTimeout(r, 25));
      }
      return true;
    };
    const loginOn = async (app: RunningApp, user: string) =>
      (await call(app.url, 'POST', '/auth/login', { json: { username: user, password: `${user}-password` } }))
        .json;

    it('a token from A works on B, and a refresh token from A refreshes on B', async () => {
      const pair = await loginOn(a, 'alice');
      expect((await call(b.url, 'GET', '/me', { token: pair.access_token })).status).toBe(200);
      const r = await call(b.url, 'POST', '/auth/refresh', { json: { refresh_token: pair.refresh_token } });
      expect(r.status, r.text).toBe(200);
    });
    it('logout on A is rejected on B within 1 s', async () => {
      const pair = await loginOn(a, 'alice');
      expect((await call(b.url, 'GET', '/me', { token: pair.access_token })).status).toBe(200);
      expect((await call(a.url, 'POST', '/auth/logout', { token: pair.access_token, json: {} })).status).toBe(
        204,
      );
      const rejected = await within(
        1000,
        async () => (await call(b.url, 'GET', '/me', { token: pair.access_token })).status === 401,
      );
      expect(rejected).toBe(true);
    });
    it('a refresh token revoked at /oauth/revoke on A introspects inactive on B within 1 s, its access token too', async () => {
      const pair = await loginOn(a, 'alice');
      const rs = (await loginOn(b, 'rs')).access_token;
      const introspectOnB = async (token: string) =>
        (await call(b.url, 'POST', '/oauth/introspect', { token: rs, form: { token } })).json;
      expect((await introspectOnB(pair.access_token)).active).toBe(true);
      expect((await introspectOnB(pair.refresh_token)).active).toBe(true);
      const r = await call(a.url, 'POST', '/oauth/revoke', {
        token: pair.access_token,
        form: { token: pair.refresh_token },
      });
      expect(r.status, r.text).toBe(200);
      const inactive = await within(1000, async () => {
        const [access, refresh] = await Promise.all([
          introspectOnB(pair.access_token),
          introspectOnB(pair.refresh_token),
        ]);
        return access?.active === false && refresh?.active === false;
      });
      expect(inactive).toBe(true);
    });
    it('a key revoked on A is rejected on B within 1 s', async () => {
      const admin = await loginOn(a, 'admin');
      const kid = headerOf(admin.access_token).kid;
      expect((await call(b.url, 'GET', '/me', { token: admin.access_token })).status).toBe(200);
      const r = await call(a.url, 'POST', `/admin/keys/${kid}/revoke`, {
        token: admin.access_token,
        json: { reason: 'test' },
      });
      expect(r.status, r.text).toBe(200);
      const rejected = await within(1000, async () => {
        const reply = await call(b.url, 'GET', '/me', { token: admin.access_token });
        return reply.status === 401 && reply.json?.error === 'key_revoked';
      });
      expect(rejected).toBe(true);
    });
  });
}
