import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import type { AuditEvent } from '../audit/events.js';
import { callbackSink } from '../audit/sinks.js';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { MasterKey } from '../keys/master-key.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { createTokenService } from './service.js';

const MASTER = MasterKey.generate().exportText();
const open: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((core) => core.close()));
});

async function setup() {
  const c = { t: Date.UTC(2030, 0, 1) };
  const now = () => c.t;
  const events: AuditEvent[] = [];
  const store = createMemoryStore({ now });
  const core = await createKeywardCore({
    store,
    masterKey: MASTER,
    logger: false,
    audit: { sinks: [callbackSink((e) => void events.push(e))], now },
    syncIntervalMs: 60_000,
    now,
  });
  open.push(core);
  return { core, store, c, events, tokens: createTokenService(core, { refreshTtlSec: 3600 }) };
}

/** Every stored key and value, to compare before and after a read-only call. */
async function dump(store: Store): Promise<Array<[string, string]>> {
  return (await store.scan('')).entries.map((e) => [e.key, e.value]);
}

describe('inspectRefresh (read-only lookup)', () => {
  it('describes a live refresh token and changes nothing in the store, emits no event, spends nothing', async () => {
    const { tokens, store, events, c } = await setup();
    const pair = await tokens.issue({
      sub: 'user_1',
      scopes: ['read', 'write'],
      claims: { tenant: 'app' },
    });
    const before = await dump(store);
    const eventsBefore = events.length;
    const info = await tokens.inspectRefresh(pair.refresh_token);
    expect(info).toEqual({
      sub: 'user_1',
      scopes: ['read', 'write'],
      claims: { tenant: 'app' },
      family: expect.any(String),
      createdAt: c.t,
      expiresAt: c.t + 3600_000,
    });
    await tokens.inspectRefresh(pair.refresh_token);
    expect(await dump(store)).toEqual(before);
    expect(events.length).toBe(eventsBefore);
    // Not spent: the refresh works, and the successor is the one now live.
    const next = await tokens.refresh(pair.refresh_token);
    expect(await tokens.inspectRefresh(pair.refresh_token)).toBeUndefined();
    expect((await tokens.inspectRefresh(next.refresh_token))?.sub).toBe('user_1');
  });

  it('is undefined for unknown, malformed, expired, spent and revoked tokens', async () => {
    const { tokens, c } = await setup();
    for (const bad of ['', 'rt_', `rt_${'A'.repeat(43)}`, 'kw_x', 'a.b.c', 42 as unknown as string]) {
      expect(await tokens.inspectRefresh(bad)).toBeUndefined();
    }
    const loggedOut = await tokens.issue({ sub: 'u' });
    await tokens.logout({ refreshToken: loggedOut.refresh_token });
    expect(await tokens.inspectRefresh(loggedOut.refresh_token)).toBeUndefined();

    const everywhere = await tokens.issue({ sub: 'v' });
    await tokens.logoutEverywhere('v');
    expect(await tokens.inspectRefresh(everywhere.refresh_token)).toBeUndefined();

    const reused = await tokens.issue({ sub: 'w' });
    const successor = await tokens.refresh(reused.refresh_token);
    c.t += 5000; // past the reuse interval: the family is revoked
    expect(await codeOf(tokens.refresh(reused.refresh_token))).toBe('refresh_token_reused');
    expect(await tokens.inspectRefresh(successor.refresh_token)).toBeUndefined();

    const old = await tokens.issue({ sub: 'x' });
    expect(await tokens.inspectRefresh(old.refresh_token)).toBeDefined();
    c.t += 3600_000 + 1;
    expect(await tokens.inspectRefresh(old.refresh_token)).toBeUndefined();
  });

  it('rejects when the store fails instead of reading as unknown', async () => {
    const { tokens, store } = await setup();
    const pair = await tokens.issue({ sub: 'u' });
    const failing = store as Store & { get: Store['get'] };
    const original = failing.get.bind(store);
    failing.get = async () => {
      throw Object.assign(new Error('down'), { code: 'ECONNREFUSED' });
    };
    await expect(tokens.inspectRefresh(pair.refresh_token)).rejects.toThrow();
    failing.get = original;
    expect(await tokens.inspectRefresh(pair.refresh_token)).toBeDefined();
  });
});
