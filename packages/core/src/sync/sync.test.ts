import { afterEach, describe, expect, it } from 'vitest';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { KeywardError } from '../errors.js';
import { KEYRING_GENERATION_KEY, KEYRING_KEY } from '../keys/keyring-store.js';
import { MasterKey } from '../keys/master-key.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { RevocationSet } from './revocations.js';
import { KeyringSync, type SyncChange } from './sync.js';

const MASTER = MasterKey.generate().exportText();
const open: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

/** A store whose reads can be counted and cut off, as when Redis is unreachable. */
function flakyStore(inner: Store) {
  const reads: string[] = [];
  const state = { down: false };
  const guard = () => {
    if (state.down) throw new KeywardError('store_unavailable', 'store is unavailable');
  };
  const store: Store = {
    ...inner,
    async get(key) {
      guard();
      reads.push(key);
      return inner.get(key);
    },
    async list(prefix, options) {
      guard();
      return inner.list(prefix, options);
    },
    async set(key, value, options) {
      guard();
      return inner.set(key, value, options);
    },
    async increment(key, by) {
      guard();
      return inner.increment(key, by);
    },
    async subscribe() {
      return async () => {}; // deaf: only polling brings changes in
    },
  };
  return { store, reads, state };
}

function deafSync(store: Store, generation: () => number, set: (g: number) => void, fullReadEvery = 3) {
  return new KeyringSync({
    store: flakyStore(store).store,
    revocations: new RevocationSet(),
    generation,
    parseKeyring: (raw) => (raw === null ? null : JSON.parse(raw)),
    reloadKeyring: async (doc) => {
      if (doc) set(doc.generation);
    },
    fullReadEvery,
  });
}

async function core(store: Store): Promise<KeywardCore> {
  const kw = await createKeywardCore({
    store,
    masterKey: MASTER,
    logger: false,
    audit: false,
    scheduler: false,
    syncIntervalMs: 3_600_000,
  });
  open.push(kw);
  return kw;
}

describe('keyring sync', () => {
  it('polls the small generation key, and reads the whole document only when it moved or every Nth poll', async () => {
    const shared = createMemoryStore();
    const writer = await core(shared);
    const { store, reads } = flakyStore(shared);
    const reader = await core(store);
    let generation = reader.sync.status().generation;
    const sync = deafSync(
      store,
      () => generation,
      (g) => {
        generation = g;
      },
      5,
    );
    reads.length = 0;
    for (let i = 0; i < 5; i++) await sync.poll();
    expect(reads.filter((k) => k === KEYRING_KEY)).toHaveLength(1); // the safety-net read
    expect(reads.filter((k) => k === KEYRING_GENERATION_KEY)).toHaveLength(4);
    await writer.keys.rotate();
    await sync.poll();
    expect(generation).toBe(writer.sync.status().generation);
  });

  it('repairs a commit whose generation key was never written (writer died in between) by the Nth full read', async () => {
    const shared = createMemoryStore();
    const writer = await core(shared);
    let generation = writer.sync.status().generation;
    const sync = deafSync(
      shared,
      () => generation,
      (g) => {
        generation = g;
      },
    );
    await sync.poll(); // poll #0 is a full read
    const before = generation;
    await writer.keys.rotate();
    await shared.set(KEYRING_GENERATION_KEY, String(before)); // the hint write after the CAS was lost
    await sync.poll();
    await sync.poll();
    expect(generation).toBe(before);
    await sync.poll(); // poll #3: the safety-net full read
    expect(generation).toBe(writer.sync.status().generation);
  });

  it('keeps verifying from the last snapshot while the store is down, reports stale, and converges when it returns', async () => {
    const shared = createMemoryStore();
    const writer = await core(shared);
    const flaky = flakyStore(shared);
    const reader = await core(flaky.store);
    const changes: SyncChange[] = [];
    reader.sync.onApplied((c) => changes.push(c));
    const token = writer.jwt.sign({ sub: 'a' });
    expect(reader.jwt.verify(token).payload.sub).toBe('a');

    flaky.state.down = true;
    await reader.sync.refresh();
    expect(reader.sync.status()).toMatchObject({
      stale: true,
      lastError: expect.stringContaining('store_unavailable'),
    });
    expect(reader.jwt.verify(token).payload.sub).toBe('a');
    const { kid } = await writer.keys.rotate();
    await expect(reader.revocations.revokeToken('j1', Date.now() + 60_000)).rejects.toMatchObject({
      code: 'store_unavailable',
    });
    expect(changes).toEqual([]); // nothing applied locally while the store is unreachable

    flaky.state.down = false;
    await reader.sync.refresh();
    expect(reader.sync.status().stale).toBe(false);
    expect(reader.jwt.verify(writer.jwt.sign({ sub: 'b' })).kid).toBe(kid);
    expect(reader.jwt.verify(token).payload.sub).toBe('a');
    expect(changes).toContainEqual({ kind: 'keyring', generation: writer.sync.status().generation });
  });

  it('keeps the last snapshot when the store has lost the keyring, re-publishes it, and says so', async () => {
    const shared = createMemoryStore();
    const kw = await core(shared);
    const token = kw.jwt.sign({ sub: 'a' });
    const before = await shared.get(KEYRING_KEY);
    await shared.delete(KEYRING_KEY);
    await kw.sync.refresh();
    expect(kw.sync.status()).toMatchObject({ stale: false, keyringProblem: 'republished' });
    expect(kw.jwt.verify(token).payload.sub).toBe('a');
    const after = JSON.parse((await shared.get(KEYRING_KEY)) as string);
    expect(after).toMatchObject({
      generation: JSON.parse(before as string).generation,
      keys: JSON.parse(before as string).keys,
    });
  });

  it('without republishKeyring, a poll that finds the keyring gone fails and keeps the last snapshot', async () => {
    const shared = createMemoryStore();
    await shared.set(KEYRING_KEY, JSON.stringify({ v: 1, generation: 3, keys: [] }));
    let generation = 0;
    const sync = deafSync(
      shared,
      () => generation,
      (g) => {
        generation = g;
      },
      1,
    );
    await sync.poll();
    expect(generation).toBe(3);
    await shared.delete(KEYRING_KEY);
    await sync.poll({ full: true });
    expect(sync.status()).toMatchObject({ stale: true, lastError: expect.stringContaining('no keyring') });
    expect(generation).toBe(3);
  });
});
