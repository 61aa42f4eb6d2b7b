import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestIdp, type TestIdp } from '../../testing/src/idp.js';
import { keyward } from './index.js';

// Tokens of a trusted external issuer (a local IdP) through fastify.authenticate: request.auth.issuer, 503.
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

describe('fastify with trustedIssuers', () => {
  it('puts a principal naming the issuer on request.auth; 503 issuer_unavailable when the IdP is down', async () => {
    const app = Fastify();
    await app.register(keyward, { keyward: kw });
    app.get('/who', { onRequest: app.authenticate }, async (request) => ({
      sub: request.auth?.sub,
      issuer: request.auth?.issuer ?? null,
    }));
    app.get('/admin', { onRequest: app.requireScopes('admin') }, async () => ({ ok: true }));
    const key = await idp.addKey();
    const auth = async (t: string) => ({ authorization: `Bearer ${t}` });
    const who = await app.inject({ url: '/who', headers: await auth(await key.sign({ sub: 'ext-1' })) });
    expect(who.json()).toEqual({ sub: 'ext-1', issuer: idp.issuer });
    expect(
      (await app.inject({ url: '/admin', headers: await auth(await key.sign({ scp: ['admin'] })) }))
        .statusCode,
    ).toBe(200);
    expect(
      (await app.inject({ url: '/admin', headers: await auth(await key.sign({ scope: 'read' })) }))
        .statusCode,
    ).toBe(403);
    const unavailable = await app.inject({
      url: '/who',
      headers: await auth(await (await down.addKey()).sign()),
    });
    expect(unavailable.statusCode).toBe(503);
    // Fastify's default error handler: the stable code is `code` (keywardErrorHandler renders `{error}`).
    expect(unavailable.json()).toMatchObject({ code: 'issuer_unavailable' });
    expect(unavailable.headers['www-authenticate']).toBeUndefined();
    await app.close();
  });
});
