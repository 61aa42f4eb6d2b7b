import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../audit/events.js';
import { createAuditLog } from '../audit/log.js';
import type { AuditSink } from '../audit/sinks.js';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { KeywardError } from '../errors.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { KeyService } from './key-service.js';
import { KeyringRepository } from './keyring-store.js';
import { MasterKey } from './master-key.js';
import { resolveRotationPolicy } from './rotation-policy.js';
import { createRotationScheduler } from './scheduler.js';

const MASTER = MasterKey.generate();
const DAY = 24 * 60 * 60 * 1000;
const open: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((core) => core.close()));
});

function clock(start = Date.UTC(2030, 0, 1)) {
  const c = { t: start, now: () => c.t };
  return c;
}

async function core(store: Store, now: () => number, events?: AuditEvent[]): Promise<KeywardCore> {
  const sink: AuditSink = { name: 'test', write: (e) => void events?.push(e) };
  const kw = await createKeywardCore({
    store,
    now,
    masterKey: MASTER.exportText(),
    logger: false,
    audit: createAuditLog({ now, sinks: [sink] }),
    scheduler: false,
    syncIntervalMs: 60_000,
  });
  open.push(kw);
  return kw;
}

const sigKeys = (kw: KeywardCore, state?: string) =>
  kw.keys.list().filter((k) => k.use === 'sig' && (state === undefined || k.state === state));

describe('rotation scheduler', () => {
  it('publishes a pending key one publishLead before the period ends, then activates it, and audits both', async () => {
    const c = clock();
    const events: AuditEvent[] = [];
    const kw = await core(createMemoryStore({ now: c.now }), c.now, events);
    const first = sigKeys(kw, 'active')[0]!.kid;
    expect(await kw.scheduler.tick()).toMatchObject({ status: 'idle' });

    c.t += 89 * DAY;
    expect(await kw.scheduler.tick()).toMatchObject({ status: 'rotated' });
    const pending = sigKeys(kw, 'pending')[0]!;
    expect(kw.keys.jwks().keys.map((k) => k.kid)).toContain(pending.kid);
    expect(kw.jwt.verify(kw.jwt.sign({ sub: 'a' })).kid).toBe(first);

    c.t += DAY;
    const before = kw.jwt.sign({ sub: 'before' });
    expect(await kw.scheduler.tick()).toMatchObject({ status: 'rotated' });
    expect(sigKeys(kw, 'active').map((k) => k.kid)).toEqual([pending.kid]);
    expect(kw.jwt.verify(kw.jwt.sign({ sub: 'b' })).kid).toBe(pending.kid);
    expect(kw.jwt.verify(before).kid).toBe(first);
    const rotated = events.find((e) => e.type === 'key.rotated' && e.kid === pending.kid);
    expect(rotated).toMatchObject({
      rotationType: 'scheduled',
      previousKid: first,
      actor: { type: 'scheduler' },
    });
    expect(events.some((e) => e.type === 'key.activated' && e.kid === pending.kid)).toBe(true);
    expect(await kw.metrics.text()).toMatch(/key_rotations_total\{type="scheduled"\} [1-9]/);

    // Past verifyUntil the old key retires and its tokens stop verifying.
    c.t += kw.policy.retainFor + 1;
    await kw.scheduler.tick();
    expect(kw.keys.list().find((k) => k.kid === first)?.state).toBe('retired');
    expect(events.some((e) => e.type === 'key.retired' && e.kid === first)).toBe(true);
  });

  it('lets exactly one of ten instances rotate when all tick at the due instant', async () => {
    const c = clock();
    const store = createMemoryStore({ now: c.now });
    const cores = await Promise.all(Array.from({ length: 10 }, () => core(store, c.now)));
    c.t += 89 * DAY;
    const results = await Promise.all(cores.map((kw) => kw.scheduler.tick()));
    expect(results.filter((r) => r.status === 'rotated')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'failed')).toEqual([]);
    await cores[0]!.sync.refresh();
    expect(sigKeys(cores[0]!, 'pending')).toHaveLength(1);
  });

  it('refuses the late write of a holder paused past its lock TTL (lock_lost), keeping the newer writer’s keyring', async () => {
    const c = clock();
    const store = createMemoryStore({ now: c.now });
    const kw = await core(store, c.now);
    const policy = resolveRotationPolicy();
    const repo = new KeyringRepository(store, MASTER, c.now);
    const service = new KeyService(repo, policy, { applied() {} }, c.now);
    let resume!: () => void;
    const gate = new Promise<void>((r) => {
      resume = r;
    });
    const errors: string[] = [];
    const paused = createRotationScheduler(
      {
        store,
        service: {
          async runSchedule(fence) {
            await gate;
            return service.runSchedule(fence);
          },
        },
        onError: (e) => errors.push(e.code),
      },
      { lockTtlMs: 1000 },
    );
    c.t += 89 * DAY;
    const stale = paused.tick(); // takes the lock, then stalls (a GC pause, a frozen VM)
    await new Promise((r) => setImmediate(r));
    c.t += 2000; // its lock expires
    expect(await kw.scheduler.tick()).toMatchObject({ status: 'rotated' });
    c.t += DAY; // the pending key is now due again, so the stale holder has something to write
    const generation = (await repo.read())!.generation;
    resume();
    const result = await stale;
    expect(result).toMatchObject({ status: 'failed', error: { code: 'lock_lost' } });
    expect(errors).toEqual(['lock_lost']);
    expect((await repo.read())!.generation).toBe(generation);
  });

  it('reports a failed run (store unreachable) through the logger and the failure metric, and keeps going', async () => {
    const c = clock();
    const store = createMemoryStore({ now: c.now });
    const logged: string[] = [];
    const kw = await createKeywardCore({
      store,
      now: c.now,
      masterKey: MASTER.exportText(),
      audit: false,
      scheduler: false,
      logger: { info() {}, warn() {}, error: (obj) => void logged.push(JSON.stringify(obj)) },
    });
    open.push(kw);
    const broken: Store = { ...store, acquireLock: async () => Promise.reject(new Error('ECONNREFUSED')) };
    const scheduler = createRotationScheduler({
      store: broken,
      service: { runSchedule: async () => ({ actions: [], generation: 0 }) },
    });
    expect(await scheduler.tick()).toMatchObject({ status: 'failed', error: { code: 'internal_error' } });
    // Through the core: a store that refuses the lock read fails the run, not the process.
    const origGet = store.get.bind(store);
    store.get = async () => Promise.reject(new KeywardError('store_unavailable', 'down'));
    c.t += 89 * DAY;
    expect(await kw.scheduler.tick()).toMatchObject({
      status: 'failed',
      error: { code: 'store_unavailable' },
    });
    expect(logged.join()).toContain('store_unavailable');
    expect(await kw.metrics.text()).toMatch(
      /keyward_key_rotation_failures_total\{code="store_unavailable"\} 1/,
    );
    store.get = origGet;
    expect(await kw.scheduler.tick()).toMatchObject({ status: 'rotated' });
  });

  it('rejects a non-positive interval at construction', () => {
    const store = createMemoryStore();
    expect(() =>
      createRotationScheduler(
        { store, service: { runSchedule: async () => ({ actions: [], generation: 0 }) } },
        { intervalMs: 0 },
      ),
    ).toThrow(expect.objectContaining({ code: 'config_invalid' }));
  });
});
