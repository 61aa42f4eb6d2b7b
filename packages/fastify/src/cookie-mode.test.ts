import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keywardErrorHandler } from './errors.js';
import { keyward } from './plugin.js';

let kw: Keyward;
let app: FastifyInstance;
let url: string;
beforeAll(async () => {
  kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
  });
  app = Fastify();
  await app.register(keyward, { keyward: kw, cookie: 'kw_at', allowedOrigins: ['https://app.example.com'] });
  app.setErrorHandler(keywardErrorHandler);
  app.post('/orders', { onRequest: app.authenticate }, async (request) => ({ by: request.auth?.sub }));
  app.delete('/orders/:id', { onRequest: app.requireScopes('write') }, async (_request, reply) =>
    reply.code(204).send(),
  );
  app.get('/orders', { onRequest: app.authenticate }, async (request) => ({ by: request.auth?.sub }));
  url = await app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await app?.close();
  await kw.close();
});

const cookie = () => `kw_at=${kw.jwt.sign({ sub: 'alice', scope: 'read write' })}`;
const crossSite = { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' };

describe('cookie mode on the app’s own Fastify routes', () => {
  it('regression #11: the authenticate / requireScopes hooks on a POST / DELETE route refuse a cross-site cookie with 403 csrf_rejected', async () => {
    for (const [method, path] of [
      ['POST', '/orders'],
      ['DELETE', '/orders/1'],
    ] as const) {
      const r = await fetch(url + path, { method, headers: { cookie: cookie(), ...crossSite } });
      expect(r.status).toBe(403);
      expect(((await r.json()) as { error: string }).error).toBe('csrf_rejected');
      expect(r.headers.get('www-authenticate')).toBeNull();
    }
  });

  it('passes same-origin and allowed-origin writes, cross-site reads and header credentials', async () => {
    const same = await fetch(`${url}/orders`, {
      method: 'POST',
      headers: { cookie: cookie(), 'sec-fetch-site': 'same-origin' },
    });
    expect(await same.json()).toEqual({ by: 'alice' });
    const allowed = await fetch(`${url}/orders/1`, {
      method: 'DELETE',
      headers: { cookie: cookie(), origin: 'https://app.example.com' },
    });
    expect(allowed.status).toBe(204);
    const read = await fetch(`${url}/orders`, { headers: { cookie: cookie(), ...crossSite } });
    expect(await read.json()).toEqual({ by: 'alice' });
    const header = await fetch(`${url}/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${kw.jwt.sign({ sub: 'bob' })}`, cookie: cookie(), ...crossSite },
    });
    expect(await header.json()).toEqual({ by: 'bob' });
  });
});
