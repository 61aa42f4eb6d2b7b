import { afterEach, describe, expect, it } from 'vitest';
import { MasterKey } from '../keys/master-key.js';
import { createKeyward, type Keyward } from '../keyward.js';
import { secretKey } from '../secrets/record.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { createAuthenticator } from './authenticate.js';
import { handleRoute, type KeywardRoute, keywardRoutes } from './routes.js';

const open: Keyward[] = [];
afterEach(async () => {
  for (const kw of open.splice(0)) await kw.close();
});

async function setup() {
  const store: Store = createMemoryStore();
  const kw = await createKeyward({
    store,
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
    scheduler: false,
    syncIntervalMs: 60_000,
    dataKeyRewrap: { background: false, settleMs: 0 },
  });
  open.push(kw);
  const routes = keywardRoutes({ ...kw, metrics: { text: async () => '', contentType: 'text/plain' } });
  const auth = createAuthenticator(kw);
  const route = (name: string) => routes.find((r) => r.name === name) as KeywardRoute;
  const bearer = (scope: string) => ({
    authorization: `Bearer ${kw.jwt.sign({ sub: 'user_1', scope })}`,
  });
  const call = (name: string, params: Record<string, string>, body?: unknown, scope = 'read') =>
    handleRoute(route(name), auth, { headers: bearer(scope), params, body });
  return { kw, store, call };
}

describe('HTTP: revoking a data key', () => {
  it('answers the replacement and the records still to rewrap; reads keep working, then a record under a destroyed key is a 503 without a challenge', async () => {
    const { kw, store, call } = await setup();
    for (const name of ['a', 'b', 'c'])
      expect((await call('putSecret', { name }, { value: `value-${name}` })).status).toBe(204);
    const leaked = kw.keys.snapshot().dataKey().kid;
    const stale = (await store.get(secretKey('user_1', 'a')))!;

    const revoked = await call('revokeKey', { kid: leaked }, { reason: 'leaked' }, 'admin');
    expect(revoked.status).toBe(200);
    const body = revoked.body as { revoked: string; replacement: string | null; toRewrap: number };
    expect(body).toEqual({
      revoked: leaked,
      replacement: expect.any(String),
      toRewrap: 3,
      unpublished: false,
    });
    expect(body.replacement).toBe(kw.keys.snapshot().dataKey().kid);

    // Still readable while nothing has been rewrapped.
    expect(await call('getSecret', { name: 'a' })).toMatchObject({
      status: 200,
      body: { name: 'a', value: 'value-a' },
    });
    const health = await call('ready', {});
    expect(health.status).toBe(200); // warn, not fail: every record still reads
    const report = JSON.parse(health.body as string) as { status: string; checks: Record<string, unknown[]> };
    expect(report.status).toBe('warn');
    expect(report.checks['data:rewrap']).toEqual([
      expect.objectContaining({ componentId: leaked, observedValue: 3, observedUnit: 'records' }),
    ]);

    await kw.dataRewrap.run();
    expect(kw.keys.snapshot().record(leaked)?.destroyedAt).toBeTypeOf('number');
    const listed = (await call('listKeys', {}, undefined, 'admin')).body as Array<Record<string, unknown>>;
    expect(listed.find((k) => k.kid === leaked)).toMatchObject({
      state: 'revoked',
      destroyedAt: expect.any(String),
    });
    for (const name of ['a', 'b', 'c'])
      expect((await call('getSecret', { name })).body).toEqual({ name, value: `value-${name}` });

    // A record written back under the destroyed key: the server's problem, never the client's token.
    await store.set(secretKey('user_1', 'a'), stale);
    const failed = await call('getSecret', { name: 'a' });
    expect(failed.status).toBe(503);
    expect(failed.body).toMatchObject({ error: 'data_key_unavailable' });
    expect(Object.keys(failed.headers).map((h) => h.toLowerCase())).not.toContain('www-authenticate');
    expect(JSON.stringify(failed.body)).not.toContain(stale.slice(-30));
  });

  it('a signing-key revocation answers no toRewrap', async () => {
    const { kw, call } = await setup();
    const sig = kw.keys.snapshot().signingKey().kid;
    const revoked = await call('revokeKey', { kid: sig }, { reason: 'leaked' }, 'admin');
    // The token signed by the revoked key was verified before the revocation took effect.
    expect(revoked.status).toBe(200);
    expect(revoked.body).toEqual({ revoked: sig, replacement: expect.any(String), unpublished: false });
  });
});
