import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { startTestIdp, type TestIdp } from '../../../testing/src/idp.js';
import type { AuditEvent } from '../audit/events.js';
import { callbackSink } from '../audit/sinks.js';
import { MasterKey } from '../keys/master-key.js';
import { createKeyward, type Keyward } from '../keyward.js';
import { keywardOptionsFromEnv } from '../options.js';
import { createMemoryStore } from '../store/memory.js';
import type { TrustedIssuer } from '../tokens/issuers.js';
import { createAuthenticator } from './authenticate.js';
import { toHttpProblem } from './errors.js';
import { ownerOf } from './principal.js';
import { handleRoute, type KeywardRoute, keywardRoutes } from './routes.js';

const MASTER = MasterKey.generate().exportText();
const open: Keyward[] = [];
const idps: TestIdp[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((kw) => kw.close()));
  await Promise.all(idps.splice(0).map((idp) => idp.close()));
});

async function setup(trusted: (idp: TestIdp) => TrustedIssuer[] = (idp) => [issuerOf(idp)]) {
  const idp = await startTestIdp();
  idps.push(idp);
  const events: AuditEvent[] = [];
  const kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MASTER,
    logger: false,
    issuer: 'https://api.example.test',
    syncIntervalMs: 60_000,
    scheduler: false,
    audit: { sinks: [callbackSink((e) => void events.push(e))] },
    trustedIssuers: trusted(idp),
  });
  open.push(kw);
  return { idp, kw, auth: createAuthenticator(kw), events };
}
function issuerOf(idp: TestIdp, extra: Partial<TrustedIssuer> = {}): TrustedIssuer {
  return { issuer: idp.issuer, discovery: true, allowInsecure: true, audience: idp.audience, ...extra };
}
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('the authenticator with trustedIssuers', () => {
  it('accepts the IdP’s tokens: principal.issuer, scopes from scp or scope, existing scope checks', async () => {
    const { idp, kw, auth } = await setup();
    expect(kw.issuers?.issuers).toEqual([idp.issuer]);
    const key = await idp.addKey();
    const admin = await auth.authenticate(bearer(await key.sign({ sub: 'ext-1', scp: ['read', 'admin'] })));
    expect(admin).toMatchObject({ sub: 'ext-1', issuer: idp.issuer, via: 'jwt', kid: key.kid });
    expect(admin.scopes).toEqual(['read', 'admin']);
    expect(() => auth.authorize(admin, { scopes: ['admin'] })).not.toThrow();
    const reader = await auth.authenticate(bearer(await key.sign({ scope: 'read write' })));
    expect(reader.scopes).toEqual(['read', 'write']);
    expect(codeOf(() => auth.authorize(reader, { scopes: ['admin'] }))).toBe('insufficient_scope');
  });

  it('keeps keyward’s own tokens on its own verifier: the IdP is never asked, no issuer on the principal', async () => {
    const { idp, kw, auth } = await setup();
    const { access_token } = await kw.tokens.issue({ sub: 'own-1', scopes: ['read'] });
    for (let i = 0; i < 20; i++) {
      const principal = await auth.authenticate(bearer(access_token));
      expect(principal.sub).toBe('own-1');
      expect(principal.issuer).toBeUndefined();
    }
    expect(idp.counts).toEqual({ discovery: 0, jwks: 0 });
    // A tampered own token stays keyward's error, and does not reach the IdP either.
    const tampered = `${access_token.slice(0, -4)}AAAA`;
    expect(await codeOf(auth.authenticate(bearer(tampered)))).toBe('token_signature_invalid');
    expect(idp.counts).toEqual({ discovery: 0, jwks: 0 });
  });

  it('a token of no trusted issuer, a wrong audience, a bad signature: 401 like any bad token, audited', async () => {
    const { idp, auth, events } = await setup();
    const key = await idp.addKey();
    const cases = [
      await key.sign({}, { iss: 'https://unknown.example' }),
      await key.sign({}, { aud: 'someone-else' }),
      `${(await key.sign()).slice(0, -6)}AAAAAA`,
    ];
    const codes = [];
    for (const token of cases) {
      const err = await auth.authenticate(bearer(token)).catch((e: unknown) => e);
      const problem = toHttpProblem(err);
      expect(problem.status).toBe(401);
      expect(problem.headers['www-authenticate']).toContain('invalid_token');
      codes.push(problem.error);
    }
    // The unknown issuer is answered as keyward's own verifier answers an unknown kid.
    expect(codes).toEqual(['token_invalid', 'token_claim_invalid', 'token_signature_invalid']);
    expect(
      events.filter((e) => e.type === 'access.denied').map((e) => (e as { code?: string }).code),
    ).toEqual(codes);
    const text = JSON.stringify(events);
    for (const token of cases) expect(text).not.toContain(token);
  });

  it('an IdP that is down with nothing cached is a 503 issuer_unavailable, never a 401', async () => {
    const { idp, auth } = await setup();
    const key = await idp.addKey();
    idp.setMode('down');
    const err = await auth.authenticate(bearer(await key.sign())).catch((e: unknown) => e);
    const problem = toHttpProblem(err);
    expect(problem).toMatchObject({ status: 503, error: 'issuer_unavailable' });
    expect(problem.headers['www-authenticate']).toBeUndefined();
    expect(problem.message).not.toContain(idp.issuer);
  });

  it('counts an external token once in the metrics: verified, or rejected with the answered code', async () => {
    const { idp, kw, auth } = await setup();
    const key = await idp.addKey();
    await auth.authenticate(bearer(await key.sign()));
    await auth.authenticate(bearer(await key.sign())).catch(() => {});
    await codeOf(auth.authenticate(bearer(await key.sign({}, { iss: 'https://unknown.example' }))));
    await codeOf(auth.authenticate(bearer(await key.sign({}, { aud: 'other' }))));
    const text = await kw.metrics.text();
    expect(text).toMatch(/tokens_verified_total\{via="jwt"\} 2\b/);
    expect(text).toMatch(/tokens_rejected_total\{reason="token_invalid"\} 1\b/);
    expect(text).toMatch(/tokens_rejected_total\{reason="token_claim_invalid"\} 1\b/);
  });

  it('refuses its own issuer among trusted issuers, and reads KEYWARD_TRUSTED_ISSUERS', async () => {
    await expect(
      createKeyward({
        store: createMemoryStore(),
        masterKey: MASTER,
        logger: false,
        issuer: 'https://api.example.test',
        trustedIssuers: [{ issuer: 'https://api.example.test', discovery: true }],
      }),
    ).rejects.toMatchObject({ code: 'config_invalid' });
    const trusted = [{ issuer: 'https://sso.example.com/realms/main', discovery: true, audience: 'api' }];
    expect(
      keywardOptionsFromEnv({ KEYWARD_TRUSTED_ISSUERS: JSON.stringify(trusted) }).trustedIssuers,
    ).toEqual(trusted);
    for (const bad of ['not json', '{"issuer":"x"}', '[1]']) {
      expect(codeOf(() => keywardOptionsFromEnv({ KEYWARD_TRUSTED_ISSUERS: bad }))).toBe('config_invalid');
    }
  });
});

describe('resources of external principals', () => {
  it('an IdP user with the same sub as a local user never reaches the local user’s API keys, secrets or tokens', async () => {
    const { idp, kw, auth } = await setup();
    const routes = keywardRoutes({ ...kw, metrics: { text: async () => '', contentType: 'text/plain' } });
    const route = (name: string) => routes.find((r) => r.name === name) as KeywardRoute;
    const key = await idp.addKey();
    const external = bearer(await key.sign({ sub: 'alice', scope: 'read' }));
    const local = {
      authorization: `Bearer ${(await kw.tokens.issue({ sub: 'alice', scopes: ['read'] })).access_token}`,
    };
    const call = (name: string, headers: Record<string, string>, params = {}, body?: unknown) =>
      handleRoute(route(name), auth, { headers, params, body });

    expect((await call('createApiKey', local, {}, { name: 'local' })).status).toBe(201);
    expect((await call('putSecret', local, { name: 'github' }, { value: 'local-secret' })).status).toBe(204);
    // The IdP's alice sees none of them, and her own live apart.
    expect((await call('listApiKeys', external)).body).toEqual([]);
    expect((await call('getSecret', external, { name: 'github' })).status).toBe(404);
    expect((await call('putSecret', external, { name: 'github' }, { value: 'idp-secret' })).status).toBe(204);
    expect(await kw.secrets.get('alice', 'github')).toBe('local-secret');
    expect(await kw.secrets.get(ownerOf({ sub: 'alice', issuer: idp.issuer }), 'github')).toBe('idp-secret');
    // Nor may she revoke the local alice's access token (RFC 7009: not hers).
    const localToken = local.authorization.slice('Bearer '.length);
    const revoke = await handleRoute(route('revokeToken'), auth, {
      headers: { ...external, 'content-type': 'application/x-www-form-urlencoded' },
      params: {},
      body: { token: localToken },
    });
    expect(revoke.status).toBe(403);
    expect(kw.jwt.verify(localToken).payload.sub).toBe('alice');
  });
});
