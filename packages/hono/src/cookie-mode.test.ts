import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KeywardEnv, keywardAuth, requireScopes } from './index.js';

let kw: Keyward;
let url: string;
let server: { close(): void } | undefined;
beforeAll(async () => {
  kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
  });
  const options = { cookie: 'kw_at', allowedOrigins: ['https://app.example.com'] };
  const app = new Hono<KeywardEnv>();
  app.use('/orders/*', keywardAuth(kw, options));
  app.use('/orders', keywardAuth(kw, options));
  app.post('/orders', (c) => c.json({ by: c.get('auth').sub }));
  app.get('/orders', (c) => c.json({ by: c.get('auth').sub }));
  app.delete('/orders/:id', requireScopes('write'), (c) => c.body(null, 204));
  await new Promise<void>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
      url = `http://127.0.0.1:${info.port}`;
      resolve();
    });
    server = s;
  });
});
afterAll(async () => {
  server?.close();
  await kw.close();
});

const cookie = () => `kw_at=${kw.jwt.sign({ sub: 'alice', scope: 'read write' })}`;
const crossSite = { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' };

describe('cookie mode on the app’s own Hono routes', () => {
  it('regression #11: keywardAuth on a POST / DELETE route refuses a cross-site cookie with 403 csrf_rejected', async () => {
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
