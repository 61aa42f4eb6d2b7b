import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../audit/events.js';
import { callbackSink } from '../audit/sinks.js';
import { toHttpProblem } from '../http/errors.js';
import { createKeyward, type Keyward } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { KEYRING_KEY, type KeyringDocument } from './keyring-store.js';
import { MasterKey } from './master-key.js';

const MASTER = MasterKey.generate().exportText();
const MIN = 60_000;
const DAY = 24 * 60 * MIN;
const open: Keyward[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((kw) => kw.close()));
});

/** A keyward on `store` with a hand-driven clock and its audit events collected. */
async function setup(store: Store = createMemoryStore(), clock = { now: Date.UTC(2026, 0, 1) }) {
  const events: AuditEvent[] = [];
  const kw = await createKeyward({
    // The store's clock is keyward's, or the scheduler's clock check would refuse to run.
    store: { ...store, time: async () => clock.now },
    masterKey: MASTER,
    logger: false,
    syncIntervalMs: 60_000,
    scheduler: false,
    now: () => clock.now,
    audit: { sinks: [callbackSink((e) => void events.push(e))] },
  });
  open.push(kw);
  return { kw, clock, events, store };
}

const sig = (kw: Keyward, state: string) =>
  kw.keys.list().filter((r) => r.use === 'sig' && r.state === state);
const rotated = (events: AuditEvent[]) => events.filter((e) => e.type === 'key.rotated');
const keysCheck = async (kw: Keyward) =>
  (await kw.health()).checks['keys:age']?.find((c) => c.componentType === 'key:sig');
const unpublishedMetric = async (kw: Keyward, type: string) => {
  const line = (await kw.metrics.text())
    .split('\n')
    .find((l) => l.startsWith(`keyward_unpublished_activations_total{type="${type}"}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
};

describe('the published standby signing key', () => {
  it('bootstrap makes one, published with the keyring; health passes', async () => {
    const { kw } = await setup();
    expect(sig(kw, 'pending')).toHaveLength(1);
    expect(sig(kw, 'pending')[0]).toMatchObject({ createdWithKeyring: true });
    expect(await keysCheck(kw)).toMatchObject({ status: 'pass' });
  });

  it('an emergency revocation promotes it; a second emergency inside jwksMaxAge says it signs unpublished', async () => {
    const { kw, clock, events } = await setup();
    const first = sig(kw, 'active')[0]!.kid;
    const standby = sig(kw, 'pending')[0]!.kid;

    const r1 = await kw.keys.revoke(first, 'leaked');
    expect(r1).toEqual({ revoked: first, replacement: standby, unpublished: false });
    // A new standby exists, but it has not been in the JWKS for jwksMaxAge yet.
    const next = sig(kw, 'pending')[0]!;
    expect(next.createdWithKeyring).toBeUndefined();
    expect(await keysCheck(kw)).toMatchObject({ status: 'warn' });
    expect((await keysCheck(kw))?.output).toContain('no published standby');

    clock.now += 2 * MIN;
    const r2 = await kw.keys.revoke(standby, 'leaked too');
    expect(r2).toEqual({ revoked: standby, replacement: next.kid, unpublished: true });
    expect(rotated(events).map((e) => [e.kid, e.rotationType, e.unpublished])).toEqual([
      [standby, 'emergency', undefined],
      [next.kid, 'emergency', true],
    ]);
    expect(await unpublishedMetric(kw, 'emergency')).toBe(1);
    expect(await unpublishedMetric(kw, 'on_demand')).toBe(0);

    // Once the standby made by the second revocation has been published for jwksMaxAge, all is well.
    clock.now += kw.policy.jwksMaxAge - 1;
    expect(await keysCheck(kw)).toMatchObject({ status: 'warn' });
    clock.now += 1;
    expect(await keysCheck(kw)).toMatchObject({ status: 'pass' });
  });

  it('an on-demand rotation promotes it; a second one inside jwksMaxAge says it signs unpublished', async () => {
    const { kw, clock, events } = await setup();
    const standby = sig(kw, 'pending')[0]!.kid;
    const a = await kw.keys.rotate({ use: 'sig' });
    expect(a).toMatchObject({ kid: standby, unpublished: false });
    const next = sig(kw, 'pending')[0]!.kid;
    clock.now += kw.policy.jwksMaxAge - 1;
    const b = await kw.keys.rotate({ use: 'sig' });
    expect(b).toMatchObject({ kid: next, previousKid: standby, unpublished: true });
    clock.now += kw.policy.jwksMaxAge;
    const c = await kw.keys.rotate({ use: 'sig' });
    expect(c.unpublished).toBe(false);
    expect(rotated(events).map((e) => e.unpublished ?? false)).toEqual([false, true, false]);
    expect(await unpublishedMetric(kw, 'on_demand')).toBe(1);
    // enc and data keys have no standby: never "unpublished".
    expect((await kw.keys.rotate({ use: 'enc' })).unpublished).toBe(false);
  });

  it('an idempotent retry returns the first call`s unpublished flag', async () => {
    const { kw } = await setup();
    await kw.keys.rotate({ use: 'sig' });
    const first = await kw.keys.rotate({ use: 'sig', idempotencyKey: 'k' });
    const again = await kw.keys.rotate({ use: 'sig', idempotencyKey: 'k' });
    expect(first.unpublished).toBe(true);
    expect(again).toEqual(first);
  });

  it('a keyring written before standbys existed gets one at start, not counted as published', async () => {
    const store = createMemoryStore();
    const clock = { now: Date.UTC(2026, 0, 1) };
    const { kw } = await setup(store, clock);
    await kw.close();
    open.splice(0);
    // Drop the standby, as a keyring from an earlier version has none.
    const doc = JSON.parse((await store.get(KEYRING_KEY)) as string) as KeyringDocument;
    const raw = JSON.stringify({
      ...doc,
      keys: doc.keys.filter((k) => !(k.use === 'sig' && k.state === 'pending')),
    });
    await store.set(KEYRING_KEY, raw);
    clock.now += DAY;
    const { kw: again, events } = await setup(store, clock);
    const standby = sig(again, 'pending');
    expect(standby).toHaveLength(1);
    expect(standby[0]).toMatchObject({ createdAt: clock.now });
    expect(standby[0]?.createdWithKeyring).toBeUndefined();
    expect(events.filter((e) => e.type === 'key.generated').map((e) => e.kid)).toEqual([standby[0]?.kid]);
    expect(await keysCheck(again)).toMatchObject({ status: 'warn' });
    clock.now += again.policy.jwksMaxAge;
    expect(await keysCheck(again)).toMatchObject({ status: 'pass' });
  });

  it('the scheduler keeps a standby after it activates one', async () => {
    const { kw, clock } = await setup();
    const standby = sig(kw, 'pending')[0]!;
    clock.now = standby.activatedAt!;
    await kw.scheduler.tick();
    expect(sig(kw, 'active').map((k) => k.kid)).toEqual([standby.kid]);
    expect(sig(kw, 'pending')).toHaveLength(1);
    expect(sig(kw, 'pending')[0]?.activatedAt).toBe(clock.now + kw.policy.sigRotateEvery);
  });
});

describe('a bounded keyring', () => {
  it('60 on-demand rotations: refused with rotation_limit (409) at maxRetiringKeys, the JWKS stays bounded', async () => {
    const { kw, clock } = await setup();
    const max = kw.policy.maxRetiringKeys;
    let refused = 0;
    let largestJwks = 0;
    for (let i = 0; i < 60; i++) {
      clock.now += MIN;
      try {
        await kw.keys.rotate({ use: 'sig' });
      } catch (err) {
        refused++;
        const problem = toHttpProblem(err);
        expect(problem).toMatchObject({ status: 409, error: 'rotation_limit' });
        expect(sig(kw, 'retiring')).toHaveLength(max);
      }
      largestJwks = Math.max(largestJwks, kw.keys.jwks().keys.length);
      expect(sig(kw, 'retiring').length).toBeLessThanOrEqual(max);
    }
    // 31 minutes of retainFor at one rotation a minute: most are refused, some go through as old keys expire.
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeLessThan(60);
    expect(largestJwks).toBe(max + 2); // active + standby + maxRetiringKeys retiring
    // Revocation is never refused.
    expect(sig(kw, 'retiring')).toHaveLength(max);
    const active = sig(kw, 'active')[0]!.kid;
    await expect(kw.keys.revoke(active, 'leaked')).resolves.toMatchObject({ revoked: active });
  });

  it('prunes retired records older than retiredRetention from the document', async () => {
    const { kw, clock, store, events } = await setup();
    for (let i = 0; i < 3; i++) {
      clock.now += kw.policy.retainFor + 1;
      await kw.keys.rotate({ use: 'sig' });
    }
    // Each rotation retired the expired key before it; the scheduler retires the last one.
    clock.now += kw.policy.retainFor + 1;
    await kw.scheduler.tick();
    const retired = sig(kw, 'retired').map((k) => k.kid);
    expect(retired).toHaveLength(3);
    clock.now += kw.policy.retiredRetention;
    await kw.scheduler.tick();
    const doc = JSON.parse((await store.get(KEYRING_KEY)) as string) as KeyringDocument;
    expect(doc.keys.filter((k) => retired.includes(k.kid))).toEqual([]);
    expect(sig(kw, 'retired')).toEqual([]);
    // Their audit events stay.
    for (const kid of retired)
      expect(events.some((e) => e.type === 'key.retired' && e.kid === kid)).toBe(true);
  });

  it('maxRetiringKeys is configurable', async () => {
    const kw = await createKeyward({
      store: createMemoryStore(),
      masterKey: MASTER,
      logger: false,
      scheduler: false,
      rotation: { maxRetiringKeys: 1 },
    });
    open.push(kw);
    await kw.keys.rotate({ use: 'data' });
    await expect(kw.keys.rotate({ use: 'data' })).rejects.toMatchObject({
      code: 'rotation_limit',
      details: { use: 'data', retiring: 1, maxRetiringKeys: 1 },
    });
  });
});
