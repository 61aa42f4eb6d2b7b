import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MasterKey } from '../packages/core/src/keys/master-key.js';
import { startTestIdp, type TestIdp, type TestIdpKey } from '../packages/testing/src/idp.js';
import { type RunningApp, startExampleProcess } from '../packages/testing/src/index.js';

// Tokens of a real local IdP (node:http on loopback, jose keys, discovery + JWKS) accepted by each
// example app as a real process, configured only through KEYWARD_TRUSTED_ISSUERS.

const examples = ['express', 'fastify', 'hono', 'nestjs'] as const;
const dirOf = (name: string) => fileURLToPath(new URL(`../examples/${name}`, import.meta.url));

describe.each(examples)('trusted issuers through the %s example', (name) => {
  let idp: TestIdp; // max-age 0: every request past the 1 s cooldown refetches
  let down: TestIdp; // a trusted issuer that is down from the start
  let key: TestIdpKey;
  let app: RunningApp;
  let dir: string;
  const get = (path: string, token?: string) =>
    fetch(`${app.url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  beforeAll(async () => {
    idp = await startTestIdp({ maxAgeSec: 0 });
    down = await startTestIdp();
    down.setMode('down');
    key = await idp.addKey({ alg: 'ES256' });
    dir = mkdtempSync(join(tmpdir(), `keyward-issuers-${name}-`));
    const trusted = [idp, down].map((p) => ({
      issuer: p.issuer,
      discovery: true,
      allowInsecure: true,
      audience: p.audience,
      algorithms: ['ES256'],
    }));
    app = await startExampleProcess(dirOf(name), {
      PORT: '0',
      KEYWARD_DIR: dir,
      KEYWARD_MASTER_KEY: MasterKey.generate().exportText(),
      KEYWARD_TRUSTED_ISSUERS: JSON.stringify(trusted),
    });
  });
  afterAll(async () => {
    await app?.stop();
    await idp?.close();
    await down?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('accepts the IdP’s tokens; their scopes work with the scope checks', async () => {
    const me = await get('/me', await key.sign({ sub: 'ext-1', scp: ['read'] }));
    expect(me.status).toBe(200);
    expect(await me.json()).toEqual({ sub: 'ext-1', scopes: ['read'], auth: 'jwt' });
    expect((await get('/admin/keys', await key.sign({ scope: 'read admin' }))).status).toBe(200);
    const denied = await get('/admin/keys', await key.sign({ scope: 'read' }));
    expect(denied.status).toBe(403);
    expect(denied.headers.get('www-authenticate')).toContain('insufficient_scope');
  });

  it('keeps accepting keyward’s own tokens', async () => {
    const login = await fetch(`${app.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'alice-password' }),
    });
    const { access_token } = (await login.json()) as { access_token: string };
    const me = await get('/me', access_token);
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ sub: 'alice', auth: 'jwt' });
  });

  it('rejects a wrong audience, an unknown issuer and an algorithm off the allow-list with 401', async () => {
    const rs = await idp.addKey({ alg: 'RS256' });
    const cases = {
      token_claim_invalid: await key.sign({}, { aud: 'other-api' }),
      token_invalid: await key.sign({}, { iss: 'https://unknown.example' }),
      alg: await rs.sign(),
    };
    for (const [expected, token] of Object.entries(cases)) {
      const res = await get('/me', token);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
      const body = (await res.json()) as { error: string };
      expect(body.error).toBe(expected === 'alg' ? 'token_invalid' : expected);
    }
    idp.publish([key]);
  });

  it('picks up a key the IdP rotates to with one more JWKS fetch', async () => {
    const next = await idp.addKey({ alg: 'ES256' });
    const token = await next.sign({ sub: 'rotated' });
    const before = idp.counts.jwks;
    let status = 0;
    // Tokens of the new key are refused only until the unknown-kid cooldown (1 s) ends.
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await get('/me', token)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(200);
    expect(idp.counts.jwks - before).toBeGreaterThanOrEqual(1);
  });

  it('an IdP that is down with nothing cached: 503 issuer_unavailable, never a 401', async () => {
    const downKey = await down.addKey();
    for (let i = 0; i < 3; i++) {
      const res = await get('/me', await downKey.sign());
      expect(res.status).toBe(503);
      expect(res.headers.get('www-authenticate')).toBeNull();
      expect(((await res.json()) as { error: string }).error).toBe('issuer_unavailable');
    }
  });

  it('an IdP that goes down once its keys are cached: its tokens are still accepted', async () => {
    idp.setMode('down');
    const before = idp.counts.jwks;
    // Until the app has tried (and failed) to refetch at least once, every answer must be 200.
    for (let i = 0; i < 100 && idp.counts.jwks === before; i++) {
      expect((await get('/me', await key.sign())).status).toBe(200);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(idp.counts.jwks).toBeGreaterThan(before);
    for (let i = 0; i < 3; i++) expect((await get('/me', await key.sign())).status).toBe(200);
    idp.setMode('ok');
  });
});

describe('an http: issuer without allowInsecure', () => {
  it('is refused at start-up with config_invalid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyward-issuers-insecure-'));
    try {
      const started = startExampleProcess(dirOf('hono'), {
        PORT: '0',
        KEYWARD_DIR: dir,
        KEYWARD_MASTER_KEY: MasterKey.generate().exportText(),
        KEYWARD_TRUSTED_ISSUERS: JSON.stringify([{ issuer: 'http://127.0.0.1:1/realms/x', discovery: true }]),
      });
      await expect(started).rejects.toThrow(/config_invalid/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
