// Downstream services verify keyward's tokens with the common libraries, against a real example
// server in its default configuration (ES256, SQLite, issuer = the address it listens on):
// jose createRemoteJWKSet + jwtVerify; jwks-rsa + jsonwebtoken (what express-jwt and passport-jwt
// do); get-jwks + fast-jwt (what @fastify/jwt does), get-jwks finding the JWKS through discovery.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createVerifier } from 'fast-jwt';
import buildGetJwks from 'get-jwks';
import { createRemoteJWKSet, customFetch, decodeProtectedHeader, jwtVerify } from 'jose';
import jwt from 'jsonwebtoken';
import jwksRsa from 'jwks-rsa';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type RunningApp, startExampleProcess } from '../../packages/testing/src/index.js';

const example = fileURLToPath(new URL('../../examples/express', import.meta.url));
const realFetch = globalThis.fetch;

type Claims = Record<string, unknown>;
interface Verifier {
  name: string;
  /** JWKS / discovery documents this verifier fetched. */
  fetches: string[];
  verify(token: string): Promise<Claims>;
}

/** Every fetch of a verifier goes through here, so the test sees when its cache was not enough. */
function counting(into: string[]): typeof fetch {
  return (input, init) => {
    into.push(new URL(input instanceof Request ? input.url : String(input)).pathname);
    return realFetch(input, init);
  };
}

/** The three verifiers, pinned to `issuer` and allowing ES256 only, with empty caches. */
function verifiers(issuer: string, jwksUri: string): Verifier[] {
  const joseFetches: string[] = [];
  // A cooldown longer than the test: once the JWKS is cached, jose never refetches in this test,
  // so a kid its cached JWKS lacks is an error, not a silent refetch.
  const joseKeys = createRemoteJWKSet(new URL(jwksUri), {
    cooldownDuration: 3_600_000,
    cacheMaxAge: 3_600_000,
    [customFetch]: counting(joseFetches),
  });
  const rsaFetches: string[] = [];
  const rsaClient = jwksRsa({
    jwksUri,
    cache: true,
    cacheMaxAge: 3_600_000,
    fetcher: async (uri) => (await (await counting(rsaFetches)(uri)).json()) as { keys: object[] },
  });
  const getJwksFetches: string[] = [];
  // get-jwks calls the global fetch: the test routes it through the counter (see beforeAll).
  const getJwks = buildGetJwks({ providerDiscovery: true, issuersWhitelist: [issuer], ttl: 3_600_000 });
  const fastVerify = createVerifier({
    key: async ({ header, payload }: { header: Claims; payload: Claims }) =>
      getJwks.getPublicKey({ kid: String(header.kid), alg: String(header.alg), domain: String(payload.iss) }),
    allowedIss: issuer,
    algorithms: ['ES256'],
    cache: false,
  });
  return [
    {
      name: 'jose createRemoteJWKSet',
      fetches: joseFetches,
      verify: async (token) =>
        (await jwtVerify(token, joseKeys, { issuer, algorithms: ['ES256'], typ: 'at+jwt' })).payload,
    },
    {
      name: 'jwks-rsa + jsonwebtoken',
      fetches: rsaFetches,
      verify: (token) =>
        new Promise<Claims>((resolve, reject) =>
          jwt.verify(
            token,
            (header, callback) =>
              rsaClient.getSigningKey(header.kid, (err, key) => callback(err, key?.getPublicKey())),
            { issuer, algorithms: ['ES256'] },
            (err, payload) => (err ? reject(err) : resolve(payload as Claims)),
          ),
        ),
    },
    {
      name: 'get-jwks (discovery) + fast-jwt',
      fetches: getJwksFetches,
      verify: async (token) => {
        getJwksTarget.current = getJwksFetches;
        return (await fastVerify(token)) as Claims;
      },
    },
  ];
}
const getJwksTarget: { current: string[] } = { current: [] };

interface Server {
  app: RunningApp;
  dir: string;
  issuer: string;
  jwksUri: string;
  call(
    method: string,
    path: string,
    options?: { token?: string; json?: unknown },
    // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
  ): Promise<{ status: number; json: any }>;
  login(user?: 'alice' | 'admin'): Promise<string>;
}

async function startServer(): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'keyward-downstream-'));
  // The default configuration: no issuer, algorithm, store or cache settings.
  const app = await startExampleProcess(example, { PORT: '0', KEYWARD_DIR: dir });
  const call = async (method: string, path: string, options: { token?: string; json?: unknown } = {}) => {
    const response = await realFetch(`${app.url}${path}`, {
      method,
      headers: {
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.json !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(options.json !== undefined ? { body: JSON.stringify(options.json) } : {}),
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : undefined };
  };
  const discovery = await call('GET', '/.well-known/openid-configuration');
  expect(discovery.status).toBe(200);
  const login = async (user: 'alice' | 'admin' = 'alice') => {
    const r = await call('POST', '/auth/login', { json: { username: user, password: `${user}-password` } });
    expect(r.status).toBe(200);
    return r.json.access_token as string;
  };
  return { app, dir, issuer: discovery.json.issuer, jwksUri: discovery.json.jwks_uri, call, login };
}

const servers: Server[] = [];
beforeAll(() => {
  vi.stubGlobal('fetch', ((input, init) => counting(getJwksTarget.current)(input, init)) as typeof fetch);
});
afterAll(() => {
  vi.unstubAllGlobals();
});
afterEach(async () => {
  for (const server of servers.splice(0)) {
    await server.app.stop();
    rmSync(server.dir, { recursive: true, force: true });
  }
});

async function serve(): Promise<Server> {
  const server = await startServer();
  servers.push(server);
  return server;
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid as string;

async function expectAllAccept(list: Verifier[], token: string, sub: string) {
  for (const v of list) {
    const claims = await v.verify(token).catch((err: Error) => {
      throw new Error(`${v.name} rejected a valid token: ${err.message}`);
    });
    expect(claims, v.name).toMatchObject({ sub });
  }
}

async function rejection(v: Verifier, token: string): Promise<string> {
  return v.verify(token).then(
    () => 'accepted',
    (err: Error & { code?: string }) => String(err.code ?? err.name),
  );
}

describe('downstream verifiers, default configuration', () => {
  it('discovery names the issuer tokens carry and the JWKS; the JWKS is ES256, private to each verifier cache', async () => {
    const server = await serve();
    expect(server.issuer).toBe(server.app.url);
    expect(server.jwksUri).toBe(`${server.app.url}/.well-known/jwks.json`);
    const oauth = await server.call('GET', '/.well-known/oauth-authorization-server');
    expect(oauth.json).toMatchObject({
      issuer: server.issuer,
      jwks_uri: server.jwksUri,
      introspection_endpoint: `${server.issuer}/oauth/introspect`,
      revocation_endpoint: `${server.issuer}/oauth/revoke`,
    });
    const jwks = await realFetch(server.jwksUri);
    expect(jwks.headers.get('cache-control')).toBe('private, max-age=600');
    const { keys } = (await jwks.json()) as { keys: Array<{ kty: string; crv: string; alg: string }> };
    expect(keys.map((k) => [k.kty, k.crv, k.alg])).toEqual([
      ['EC', 'P-256', 'ES256'],
      ['EC', 'P-256', 'ES256'],
    ]);
    const token = await server.login();
    expect(decodeProtectedHeader(token).alg).toBe('ES256');
    for (const v of verifiers(server.issuer, server.jwksUri)) {
      expect(await v.verify(token), v.name).toMatchObject({ iss: server.issuer, sub: 'alice' });
    }
  });

  it('a token issued right after an on-demand rotation verifies with every warm cache; jose needs no refetch', async () => {
    const server = await serve();
    const list = verifiers(server.issuer, server.jwksUri);
    const before = await server.login();
    await expectAllAccept(list, before, 'alice');
    const [jose] = list as [Verifier];
    expect(jose.fetches).toEqual(['/.well-known/jwks.json']);

    const rotated = await server.call('POST', '/admin/keys/rotate', {
      token: await server.login('admin'),
      json: { use: 'sig' },
    });
    expect(rotated.status).toBe(200);
    expect(rotated.json.unpublished).toBe(false);
    const after = await server.login();
    expect(kidOf(after)).toBe(rotated.json.kid);
    expect(kidOf(after)).not.toBe(kidOf(before));
    await expectAllAccept(list, after, 'alice');
    await expectAllAccept(list, before, 'alice'); // the retiring key still verifies
    // jose's JWKS, cached before the rotation, already held the new key (the published standby).
    expect(jose.fetches).toHaveLength(1);
    // get-jwks found the JWKS through discovery.
    expect((list[2] as Verifier).fetches).toContain('/.well-known/openid-configuration');
  });

  it('after revoking the active key, a token signed by the replacement verifies with every warm cache; keyward rejects the revoked key at once', async () => {
    const server = await serve();
    const list = verifiers(server.issuer, server.jwksUri);
    const before = await server.login();
    await expectAllAccept(list, before, 'alice');
    const [jose] = list as [Verifier];

    const leaked = kidOf(before);
    const revoked = await server.call('POST', `/admin/keys/${leaked}/revoke`, {
      token: await server.login('admin'),
      json: { reason: 'downstream test' },
    });
    expect(revoked.status).toBe(200);
    expect(revoked.json).toMatchObject({ revoked: leaked, unpublished: false });
    const after = await server.login();
    expect(kidOf(after)).toBe(revoked.json.replacement);
    await expectAllAccept(list, after, 'alice');
    expect(jose.fetches).toHaveLength(1);

    // keyward itself refuses the revoked key's token at once.
    const me = await server.call('GET', '/me', { token: before });
    expect(me.status).toBe(401);
    expect(me.json.error).toBe('key_revoked');
    // The revoked kid left the JWKS: a verifier that fetches it now rejects the token…
    const fresh = verifiers(server.issuer, server.jwksUri);
    expect(await rejection(fresh[0] as Verifier, before)).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(await rejection(fresh[1] as Verifier, before)).not.toBe('accepted');
    expect(await rejection(fresh[2] as Verifier, before)).not.toBe('accepted');
    // …while a warm cache keeps accepting it until it expires (docs/downstream.md): only
    // introspection or a short JWKS cache closes that window downstream.
    expect(await rejection(jose, before)).toBe('accepted');
  });

  it('rejects tokens pinned to another issuer or another algorithm, and a forged one', async () => {
    const server = await serve();
    const token = await server.login();
    for (const v of verifiers('http://other-issuer.example', server.jwksUri)) {
      expect(await rejection(v, token), v.name).not.toBe('accepted');
    }
    const rs256Only = createRemoteJWKSet(new URL(server.jwksUri));
    await expect(jwtVerify(token, rs256Only, { algorithms: ['RS256'] })).rejects.toMatchObject({
      code: 'ERR_JOSE_ALG_NOT_ALLOWED',
    });
    const [h, p] = token.split('.') as [string, string];
    const claims = { ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'mallory' };
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${token.split('.')[2]}`;
    for (const v of verifiers(server.issuer, server.jwksUri)) {
      expect(await rejection(v, forged), v.name).not.toBe('accepted');
    }
  });

  it('rotation then revocation inside jwksMaxAge: keyward reports the replacement unpublished, and a cache from before the rotation lacks it until it refetches', async () => {
    const server = await serve();
    const list = verifiers(server.issuer, server.jwksUri);
    await expectAllAccept(list, await server.login(), 'alice');
    const admin = await server.login('admin');
    const rotated = await server.call('POST', '/admin/keys/rotate', { token: admin, json: { use: 'sig' } });
    const revoked = await server.call('POST', `/admin/keys/${rotated.json.kid}/revoke`, {
      token: admin,
      json: { reason: 'second emergency' },
    });
    expect(revoked.json.unpublished).toBe(true);
    const after = await server.login();
    const [jose, rsa, getJwks] = list as [Verifier, Verifier, Verifier];
    // jose keeps the JWKS document and, within its cooldown, does not refetch: the error window.
    expect(await rejection(jose, after)).toBe('ERR_JWKS_NO_MATCHING_KEY');
    // jwks-rsa and get-jwks cache per kid and fetch the JWKS for an unknown one.
    await expectAllAccept([rsa, getJwks], after, 'alice');
  });
});
