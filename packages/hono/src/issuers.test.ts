import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestIdp, type TestIdp } from '../../testing/src/idp.js';
import { type KeywardEnv, keywardAuth, requireScopes } from './index.js';

// Tokens of a trusted external issuer (a local IdP) through keywardAuth: principal.issuer, scopes, 503.
let kw: Keyward;
let idp: TestIdp;
let down: TestIdp;
beforeAll(async () => {
  [idp, down] = [await startTestIdp(), await startTestIdp()];
  down.setMode('down');
  kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
    trustedIssuers: [idp, down].map((p) => ({
      issuer: p.issuer,
      discovery: true,
      allowInsecure: true,
      audience: p.audience,
    })),
  });
});
afterAll(async () => {
  await kw.close();
  await Promise.all([idp.close(), down.close()]);
});

function app() {
  const a = new Hono<KeywardEnv>();
  a.use(keywardAuth(kw));
  a.get('/who', (c) => c.json({ sub: c.get('auth').sub, issuer: c.get('auth').issuer ?? null }));
  a.get('/admin', requireScopes('admin'), (c) => c.json({ ok: true }));
  return a;
}
const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

describe('keywardAuth with trustedIssuers', () => {
  it('sets a principal that names the issuer; scp scopes pass requireScopes', async () => {
    const key = await idp.addKey();
    const who = await app().request('/who', bearer(await key.sign({ sub: 'ext-1', scp: ['admin'] })));
    expect(await who.json()).toEqual({ sub: 'ext-1', issuer: idp.issuer });
    expect((await app().request('/admin', bearer(await key.sign({ scp: ['admin'] })))).status).toBe(200);
    expect((await app().request('/admin', bearer(await key.sign({ scope: 'read' })))).status).toBe(403);
    const own = await app().request('/who', bearer(kw.jwt.sign({ sub: 'alice' })));
    expect(await own.json()).toEqual({ sub: 'alice', issuer: null });
  });

  it('answers 401 for a wrong audience and 503 issuer_unavailable for an IdP down with nothing cached', async () => {
    const key = await idp.addKey();
    expect((await app().request('/who', bearer(await key.sign({}, { aud: 'x' })))).status).toBe(401);
    const unavailable = await app().request('/who', bearer(await (await down.addKey()).sign()));
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers.get('www-authenticate')).toBeNull();
  });
});
