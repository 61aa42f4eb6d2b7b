import type { AddressInfo } from 'node:net';
import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyward } from './keyward.js';

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
  const auth = keyward(kw, { cookie: 'kw_at', allowedOrigins: ['https://app.example.com'] });
  const app = express();
  app.post('/orders', auth.authenticate(), (req, res) => void res.json({ by: req.auth?.sub }));
  app.delete('/orders/:id', auth.requireScopes('write'), (_req, res) => void res.status(204).end());
  app.get('/orders', auth.optional(), (req, res) => void res.json({ by: req.auth?.sub ?? null }));
  app.use(auth.errorHandler());
  const listening = app.listen(0, '127.0.0.1');
  server = listening;
  await new Promise((resolve) => listening.once('listening', resolve));
  url = `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.close();
  await kw.close();
});

const cookie = () => `kw_at=${kw.jwt.sign({ sub: 'alice', scope: 'read write' })}`;
const crossSite = { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' };

describe('cookie mode on the app’s own Express routes', () => {
  it('regression #11: authenticate() / requireScopes() on a POST / DELETE route refuse a cross-site cookie with 403 csrf_rejected', async () => {
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
