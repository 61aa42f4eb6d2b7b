import type { AuditEvent } from '../../audit/events.js';
import { callbackSink } from '../../audit/sinks.js';
import { MasterKey } from '../../keys/master-key.js';
import { createKeywardCore, type KeywardCore } from '../../keyward.js';
import type { Store } from '../../store/types.js';

/** A store wrapper that counts calls per method (and can drop publishes, to simulate a lost message). */
export function countingStore(inner: Store): {
  store: Store;
  calls: Record<string, number>;
  writes: () => number;
  reset: () => void;
  dropPublish: { value: boolean };
} {
  const calls: Record<string, number> = {};
  const dropPublish = { value: false };
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls[String(prop)] = (calls[String(prop)] ?? 0) + 1;
        if (prop === 'publish' && dropPublish.value) return Promise.resolve();
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const writes = () => (calls.set ?? 0) + (calls.compareAndSet ?? 0) + (calls.delete ?? 0);
  const reset = () => {
    for (const k of Object.keys(calls)) delete calls[k];
  };
  return { store, calls, writes, reset, dropPublish };
}

/** A mutable test clock. */
export function testClock(start = Date.UTC(2026, 0, 1)): {
  now: () => number;
  advance: (ms: number) => void;
} {
  let t = start;
  return {
    now: () => t,
    advance(ms) {
      t += ms;
    },
  };
}

/** A core on `store` whose audit events land in `events`. */
export async function makeCore(
  store: Store,
  options: { masterKey?: string; now?: () => number; events?: AuditEvent[] } = {},
): Promise<KeywardCore> {
  const events = options.events;
  return createKeywardCore({
    store,
    masterKey: options.masterKey ?? MasterKey.generate().exportText(),
    logger: false,
    audit: events ? { sinks: [callbackSink((e) => void events.push(e))] } : false,
    ...(options.now ? { now: options.now } : {}),
    syncIntervalMs: 60_000,
  });
}
