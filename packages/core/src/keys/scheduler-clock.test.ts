import { afterEach, describe, expect, it } from 'vitest';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { createHealth } from '../health/health.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { MasterKey } from './master-key.js';

const MASTER = MasterKey.generate().exportText();
const DAY = 24 * 60 * 60 * 1000;
const MINUTE = 60_000;
const open: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

/** A memory store on clock `c`, whose `time()` (the store's own clock) is off by `skew.ms`. */
function setup() {
  const c = { t: Date.UTC(2030, 0, 1) };
  const skew = { ms: 0, calls: 0 };
  const inner = createMemoryStore({ now: () => c.t });
  const store: Store = {
    ...inner,
    async time() {
      skew.calls += 1;
      return c.t + skew.ms;
    },
  };
  return { c, skew, store };
}

async function core(store: Store, now: () => number): Promise<KeywardCore> {
  const kw = await createKeywardCore({
    store,
    now,
    masterKey: MASTER,
    logger: false,
    audit: false,
    scheduler: false,
    syncIntervalMs: 60_000,
  });
  open.push(kw);
  return kw;
}

const sig = (kw: KeywardCore, state: string) =>
  kw.keys.list().filter((k) => k.use === 'sig' && k.state === state);

describe('scheduler clock safety', () => {
  it('activates and retires nothing while its clock is off the store clock by more than clockSkew, warns, and resumes within it', async () => {
    const { c, skew, store } = setup();
    const kw = await core(store, () => c.t);
    const health = createHealth(kw);
    const first = sig(kw, 'active')[0]!.kid;
    // The standby signing key made at bootstrap; nothing else may appear while the clock is off.
    const standby = sig(kw, 'pending').map((k) => k.kid);
    expect(standby).toHaveLength(1);
    expect(kw.policy.clockSkew).toBe(MINUTE);

    // Due: a pending key must be published. With the store clock 2 minutes behind, nothing happens.
    c.t += 89 * DAY;
    skew.ms = -2 * MINUTE;
    const generation = kw.sync.status().generation;
    expect(await kw.scheduler.tick()).toEqual({ status: 'clock_offset', offsetMs: 2 * MINUTE });
    expect(skew.calls).toBe(1);
    expect(sig(kw, 'pending').map((k) => k.kid)).toEqual(standby);
    expect(kw.sync.status().generation).toBe(generation);
    expect(kw.scheduler).toMatchObject({ clockOffsetMs: 2 * MINUTE, clockUnsafe: true });
    const report = await health();
    expect(report.status).toBe('warn');
    expect(report.checks['clock:offset']?.[0]).toMatchObject({
      status: 'warn',
      observedValue: 120,
      observedUnit: 's',
      output: expect.stringContaining('120s'),
    });
    expect(await kw.metrics.text()).toMatch(/keyward_clock_offset_seconds 120\b/);

    // Ahead works the same way (the store clock 5 minutes ahead): no activation either.
    skew.ms = 5 * MINUTE;
    expect(await kw.scheduler.tick()).toEqual({ status: 'clock_offset', offsetMs: -5 * MINUTE });
    expect(sig(kw, 'pending').map((k) => k.kid)).toEqual(standby);

    // Within clockSkew (30 s off, skew 60 s): the plan runs normally.
    skew.ms = 30_000;
    expect((await kw.scheduler.tick()).status).not.toBe('clock_offset');
    const pending = sig(kw, 'pending')[0]!.kid;
    expect(kw.scheduler).toMatchObject({ clockOffsetMs: -30_000, clockUnsafe: false });
    expect((await health()).checks['clock:offset']?.[0]).toMatchObject({
      status: 'pass',
      observedValue: -30,
    });

    // The pending key is due to activate: off again, it stays pending and the old key keeps signing.
    c.t += DAY;
    skew.ms = 10 * MINUTE;
    expect(await kw.scheduler.tick()).toMatchObject({ status: 'clock_offset' });
    expect(sig(kw, 'active').map((k) => k.kid)).toEqual([first]);
    skew.ms = 0;
    expect(await kw.scheduler.tick()).toMatchObject({ status: 'rotated' });
    expect(sig(kw, 'active').map((k) => k.kid)).toEqual([pending]);

    // Retirement is held back the same way.
    c.t += kw.policy.retainFor + 1;
    skew.ms = -10 * MINUTE;
    expect(await kw.scheduler.tick()).toMatchObject({ status: 'clock_offset' });
    expect(kw.keys.list().find((k) => k.kid === first)?.state).toBe('retiring');
    skew.ms = 0;
    expect(await kw.scheduler.tick()).toMatchObject({ status: 'rotated' });
    expect(kw.keys.list().find((k) => k.kid === first)?.state).toBe('retired');
  });

  it('skips the check for a store without time()', async () => {
    const c = { t: Date.UTC(2030, 0, 1) };
    const { time: _time, ...noTime } = createMemoryStore({ now: () => c.t });
    const kw = await core(noTime as Store, () => c.t);
    c.t += 89 * DAY;
    expect(await kw.scheduler.tick()).toMatchObject({ status: 'rotated' });
    expect(kw.scheduler.clockOffsetMs).toBeUndefined();
    expect((await createHealth(kw)()).checks['clock:offset']?.[0]).toMatchObject({ status: 'pass' });
  });
});
