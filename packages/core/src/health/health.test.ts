import { afterEach, describe, expect, it } from 'vitest';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { KeywardError } from '../errors.js';
import { MasterKey } from '../keys/master-key.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { createHealth } from './health.js';

const MASTER = MasterKey.generate().exportText();
const open: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((core) => core.close()));
});

/** A memory store whose backend can be "unplugged": every call then throws `store_unavailable`. */
function pluggableStore() {
  const inner = createMemoryStore();
  const state = { down: false, pings: 0 };
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || prop === 'close') return value;
      return (...args: unknown[]) => {
        if (prop === 'ping') state.pings += 1;
        if (state.down)
          return Promise.reject(new KeywardError('store_unavailable', 'redis://:hunter2@db down'));
        return value.apply(target, args);
      };
    },
  }) as Store;
  return { store, state };
}

async function setup() {
  const clock = { t: Date.UTC(2030, 0, 1) };
  const { store, state } = pluggableStore();
  const core = await createKeywardCore({
    store,
    masterKey: MASTER,
    logger: false,
    audit: false,
    scheduler: false,
    syncIntervalMs: 60_000,
    now: () => clock.t,
  });
  open.push(core);
  return { core, clock, state, health: createHealth(core, { version: '1.2.3' }) };
}

describe('createHealth', () => {
  it('passes with fresh keys and a reachable store', async () => {
    const { health, state } = await setup();
    const report = await health();
    expect(report.status).toBe('pass');
    expect(report.version).toBe('1.2.3');
    expect(report.checks['keys:age']?.map((c) => c.componentType)).toEqual([
      'key:sig',
      'key:enc',
      'key:data',
    ]);
    expect(report.checks['store:responseTime']?.[0]).toMatchObject({ status: 'pass', observedUnit: 'ms' });
    expect(typeof report.checks['store:responseTime']?.[0]?.observedValue).toBe('number');
    expect(report.checks['sync:generation']?.[0]).toMatchObject({ status: 'pass' });
    expect(state.pings).toBe(1);
  });

  it('store down: the store check fails, the report warns (verification keeps working)', async () => {
    const { core, health, state } = await setup();
    const token = core.jwt.sign({ sub: 'u' });
    state.down = true;
    await core.sync.refresh();
    const report = await health();
    expect(report.status).toBe('warn');
    expect(report.checks['store:responseTime']?.[0]).toMatchObject({
      status: 'fail',
      output: 'store unreachable',
    });
    expect(report.checks['sync:generation']?.[0]).toMatchObject({ status: 'warn' });
    expect(JSON.stringify(report)).not.toContain('hunter2');
    expect(core.jwt.verify(token).payload.sub).toBe('u');
    state.down = false;
    await core.sync.refresh();
    expect((await health()).status).toBe('pass');
  });

  it('ready: false does no I/O and reads the store state from sync', async () => {
    const { core, health, state } = await setup();
    expect((await health({ ready: false })).status).toBe('pass');
    state.down = true;
    await core.sync.refresh();
    const report = await health({ ready: false });
    expect(report.status).toBe('warn');
    expect(report.checks['store:responseTime']?.[0]?.status).toBe('fail');
    expect(state.pings).toBe(0);
  });

  it('warns when an active key is past its rotation period', async () => {
    const { core, health, clock } = await setup();
    clock.t += core.policy.dataRotateEvery + 1000;
    const report = await health();
    expect(report.status).toBe('warn');
    const data = report.checks['keys:age']?.find((c) => c.componentType === 'key:data');
    expect(data).toMatchObject({ status: 'warn', output: expect.stringContaining('rotation') });
    expect(report.checks['keys:age']?.find((c) => c.componentType === 'key:sig')?.status).toBe('pass');
  });
});
