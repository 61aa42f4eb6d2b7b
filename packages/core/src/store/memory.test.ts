import { describe, expect, it } from 'vitest';
import { describeStoreContract } from '../../../testing/src/store-contract.js';
import { createMemoryStore } from './memory.js';

let t = 1_700_000_000_000;
describeStoreContract('memory', {
  make: async () => createMemoryStore({ now: () => t }),
  advance: (ms) => {
    t += ms;
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
