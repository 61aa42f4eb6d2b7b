import { randomUUID } from 'node:crypto';
import {
  checkCollection,
  checkHandler,
  checkIncrement,
  checkKey,
  checkStoreKey,
  checkTtl,
  checkValue,
  closedError,
  collectionOf,
  decodeKeyCursor,
  deliver,
  encodeKeyCursor,
  limitOf,
  parseCounter,
  ttlOf,
} from './arguments.js';
import type {
  Store,
  StoreListOptions,
  StoreListPage,
  StoreLock,
  StoreMessageHandler,
  StoreSetOptions,
} from './types.js';

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /** Clock in epoch milliseconds used for TTLs and locks (inject a fake one in tests). Default `Date.now`. */
  now?: () => number;
}

interface Entry {
  value: string;
  expiresAt: number | undefined;
}

interface LockState {
  holder: string | undefined;
  expiresAt: number;
  /** Last fencing token granted; kept after release so tokens never repeat. */
  token: number;
}

/**
 * An in-process {@link Store} for tests and throwaway demos. Nothing survives the process;
 * pub/sub reaches only subscribers of the same store object.
 *
 * @example
 * ```ts
 * let t = 0
 * const store = createMemoryStore({ now: () => t })
 * await store.set('otp:42', '123456', { ttlMs: 1000 })
 * t += 1001
 * await store.get('otp:42') // null
 * ```
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): Store {
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();
  /** Collection → ids of its members (the index `list` reads instead of walking every entry). */
  const collections = new Map<string, Set<string>>();
  const locks = new Map<string, LockState>();
  const channels = new Map<string, Set<StoreMessageHandler>>();
  let closed = false;

  function open(): void {
    if (closed) throw closedError('memory');
  }

  function live(key: string): Entry | undefined {
    const entry = entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= now()) {
      remove(key);
      return undefined;
    }
    return entry;
  }

  function remove(key: string): void {
    if (!entries.delete(key)) return;
    const member = collectionOf(key);
    if (member === undefined) return;
    const ids = collections.get(member.collection);
    ids?.delete(member.id);
    if (ids?.size === 0) collections.delete(member.collection);
  }

  function put(key: string, entry: Entry): void {
    entries.set(key, entry);
    const member = collectionOf(key);
    if (member === undefined) return;
    const ids = collections.get(member.collection) ?? new Set<string>();
    ids.add(member.id);
    collections.set(member.collection, ids);
  }

  function write(key: string, value: string, ttlMs: number | undefined): void {
    put(key, { value, expiresAt: ttlMs === undefined ? undefined : now() + ttlMs });
  }

  function pageOf(keys: string[], limit: number, cursorOf: (key: string) => string): StoreListPage {
    const page: StoreListPage = { entries: [], cursor: null };
    for (const [index, key] of keys.entries()) {
      if (page.entries.length === limit) {
        page.cursor = encodeKeyCursor(cursorOf(keys[index - 1] as string));
        break;
      }
      const entry = live(key);
      if (entry !== undefined) page.entries.push({ key, value: entry.value });
    }
    return page;
  }

  function heldBy(name: string, holder: string): LockState | undefined {
    const state = locks.get(name);
    return state?.holder === holder && state.expiresAt > now() ? state : undefined;
  }

  function makeLock(name: string, holder: string, token: number): StoreLock {
    return {
      name,
      token,
      async extend(ttlMs: number) {
        const ttl = checkTtl(ttlMs);
        open();
        const state = heldBy(name, holder);
        if (state === undefined) return false;
        state.expiresAt = now() + ttl;
        return true;
      },
      async release() {
        open();
        const state = heldBy(name, holder);
        if (state === undefined) return false;
        state.holder = undefined;
        return true;
      },
      async isHeld() {
        open();
        return heldBy(name, holder) !== undefined;
      },
    };
  }

  return {
    driver: 'memory',
    async get(key: string) {
      checkStoreKey(key);
      open();
      return live(key)?.value ?? null;
    },
    async set(key: string, value: string, setOptions?: StoreSetOptions) {
      checkStoreKey(key);
      checkValue(value);
      const ttl = ttlOf(setOptions);
      open();
      write(key, value, ttl);
    },
    async delete(key: string) {
      checkStoreKey(key);
      open();
      const existed = live(key) !== undefined;
      remove(key);
      return existed;
    },
    async compareAndSet(key, expected, value, setOptions) {
      checkStoreKey(key);
      if (expected !== null) checkValue(expected, 'expected');
      checkValue(value);
      const ttl = ttlOf(setOptions);
      open();
      if ((live(key)?.value ?? null) !== expected) return false;
      write(key, value, ttl);
      return true;
    },
    async take(key: string) {
      checkStoreKey(key);
      open();
      const entry = live(key);
      remove(key);
      return entry?.value ?? null;
    },
    async list(collection: string, listOptions: StoreListOptions = {}): Promise<StoreListPage> {
      checkCollection(collection);
      const limit = limitOf(listOptions.limit);
      const after = decodeKeyCursor(listOptions.cursor);
      open();
      const ids = [...(collections.get(collection) ?? [])]
        .filter((id) => after === undefined || id > after)
        .sort();
      return pageOf(
        ids.map((id) => collection + id),
        limit,
        (key) => key.slice(collection.length),
      );
    },
    async scan(prefix: string, listOptions: StoreListOptions = {}): Promise<StoreListPage> {
      checkValue(prefix, 'prefix');
      const limit = limitOf(listOptions.limit);
      const after = decodeKeyCursor(listOptions.cursor);
      open();
      const keys = [...entries.keys()]
        .filter((key) => key.startsWith(prefix) && (after === undefined || key > after))
        .sort();
      return pageOf(keys, limit, (key) => key);
    },
    async increment(key: string, by = 1, incrementOptions?: StoreSetOptions) {
      checkStoreKey(key);
      const step = checkIncrement(by);
      const ttl = ttlOf(incrementOptions);
      open();
      const entry = live(key);
      const next = parseCounter(entry?.value) + step;
      const expiresAt = entry?.expiresAt ?? (ttl === undefined ? undefined : now() + ttl);
      put(key, { value: String(next), expiresAt });
      return next;
    },
    async acquireLock(name: string, ttlMs: number) {
      checkKey(name, 'name');
      const ttl = checkTtl(ttlMs);
      open();
      const state = locks.get(name) ?? { holder: undefined, expiresAt: 0, token: 0 };
      if (state.holder !== undefined && state.expiresAt > now()) return null;
      const holder = randomUUID();
      state.holder = holder;
      state.expiresAt = now() + ttl;
      state.token += 1;
      locks.set(name, state);
      return makeLock(name, holder, state.token);
    },
    async publish(channel: string, message: string) {
      checkKey(channel, 'channel');
      checkValue(message, 'message');
      open();
      for (const handler of [...(channels.get(channel) ?? [])]) {
        // Delivered asynchronously like the other drivers, so a handler never runs inside publish().
        queueMicrotask(() => deliver(handler, message));
      }
    },
    async subscribe(channel: string, handler: StoreMessageHandler) {
      checkKey(channel, 'channel');
      checkHandler(handler);
      open();
      const handlers = channels.get(channel) ?? new Set();
      const subscription: StoreMessageHandler = (message) => handler(message);
      handlers.add(subscription);
      channels.set(channel, handlers);
      return async () => {
        handlers.delete(subscription);
        if (handlers.size === 0 && channels.get(channel) === handlers) channels.delete(channel);
      };
    },
    async ping() {
      open();
      return 0;
    },
    async close() {
      closed = true;
      channels.clear();
    },
    /** The store's clock: the `now` option (the host clock by default). */
    async time() {
      open();
      return now();
    },
  };
}
