import { describe, expect, it } from 'vitest';
import { describeStoreContract } from '../../../testing/src/store-contract.js';
import { createMemoryStore } from './memory.js';

/**
 * Counts what the memory driver reads: every Map/Set lookup and every element a Map/Set iterator
 * yields (a listing that walked all entries would count each of them).
 */
function countMapReads(): () => number {
  let reads = 0;
  for (const proto of [Map.prototype, Set.prototype] as unknown as Array<Record<string | symbol, unknown>>) {
    for (const name of ['get', 'has', 'keys', 'values', 'entries', Symbol.iterator] as const) {
      const original = proto[name] as (...args: unknown[]) => unknown;
      if (typeof original !== 'function' || (original as { counted?: boolean }).counted) continue;
      const counted = function (this: unknown, ...args: unknown[]) {
        const result = original.apply(this, args);
        if (name === 'get' || name === 'has') {
          reads++;
          return result;
        }
        const iterator = result as Iterator<unknown>;
        return {
          next() {
            reads++;
            return iterator.next();
          },
          [Symbol.iterator]() {
            return this;
          },
        };
      };
      Object.defineProperty(counted, 'counted', { value: true });
      Object.defineProperty(proto, name, { value: counted, configurable: true, writable: true });
    }
  }
  return () => reads;
}

let t = 1_700_000_000_000;
let counter: (() => number) | undefined;
let last = 0;
describeStoreContract('memory', {
  make: async () => createMemoryStore({ now: () => t }),
  advance: (ms) => {
    t += ms;
  },
  async touched() {
    counter ??= countMapReads();
    const total = counter();
    const delta = total - last;
    last = total;
    return delta;
  },
});

describe('memory store', () => {
  it('keeps separate store objects apart', async () => {
    const a = createMemoryStore();
    const b = createMemoryStore();
    await a.set('k', 'v');
    expect(await b.get('k')).toBeNull();
  });

  it('keeps a counter TTL when incrementing', async () => {
    let now = 0;
    const store = createMemoryStore({ now: () => now });
    await store.set('window', '1', { ttlMs: 1000 });
    expect(await store.increment('window')).toBe(2);
    now = 1000;
    expect(await store.get('window')).toBeNull();
  });
});
