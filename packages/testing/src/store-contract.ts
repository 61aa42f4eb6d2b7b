import { setTimeout as delay } from 'node:timers/promises';
import type { Store } from '@keyward/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/** How {@link describeStoreContract} makes the stores it tests. */
export interface StoreContractFactory {
  /** A fresh, empty store (new namespace or prefix) for one test. */
  make(): Promise<Store>;
  /**
   * A second instance on the same backend as the last {@link make} (another connection, another
   * sqlite handle). Absent: the suite uses the first store as its own peer.
   */
  makePeer?(): Promise<Store>;
  /** Moves the injected clock of the stores forward. Absent: the suite waits in real time. */
  advance?(ms: number): void | Promise<void>;
  /** Runs after each test, once the stores are closed (drop keys, delete files). */
  cleanup?(): Promise<void>;
  /**
   * How many backend entries or commands the last {@link make}'s store read since the previous
   * call (a full SCAN counts as the whole database). Present: the suite checks that listing a
   * small collection next to 100k other keys reads only that collection.
   */
  touched?(): Promise<number>;
  /** Writes many entries quickly (pipelines, one transaction). Absent: batches of `set`. */
  fill?(store: Store, entries: ReadonlyArray<readonly [string, string]>): Promise<void>;
}

/** Reads every page of a listing (`list` or `scan`), checking that pages never repeat a key. */
async function readAll(
  read: (options: { cursor?: string; limit?: number }) => ReturnType<Store['list']>,
  limit?: number,
): Promise<{ keys: string[]; values: Map<string, string>; pages: number }> {
  const keys: string[] = [];
  const values = new Map<string, string>();
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await read({
      ...(limit === undefined ? {} : { limit }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    pages++;
    for (const { key, value } of page.entries) {
      keys.push(key);
      values.set(key, value);
    }
    cursor = page.cursor ?? undefined;
  } while (cursor !== undefined && pages < 10_000);
  return { keys, values, pages };
}

/** Waits for `count` messages on a list, failing after `timeoutMs` of real time. */
async function waitFor(received: string[], count: number, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (received.length < count) {
    if (Date.now() > deadline) throw new Error(`expected ${count} messages, got ${received.length}`);
    await delay(5);
  }
}

/**
 * The contract every keyward store driver passes (in the spirit of unstorage's `testDriver`):
 * CRUD, TTL, compare-and-set, take, paged listing, counters, locks with fencing tokens, pub/sub
 * across instances, ping and close.
 *
 * @example
 * ```ts
 * let t = 1_000
 * describeStoreContract('memory', {
 *   make: async () => createMemoryStore({ now: () => t }),
 *   advance: (ms) => { t += ms },
 * })
 * ```
 */
export function describeStoreContract(name: string, factory: StoreContractFactory): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    let peer: Store;
    const opened: Store[] = [];

    async function passTime(ms: number): Promise<void> {
      if (factory.advance) await factory.advance(ms);
      else await delay(ms);
    }

    beforeEach(async () => {
      store = await factory.make();
      opened.push(store);
      peer = factory.makePeer ? await factory.makePeer() : store;
      opened.push(peer);
    });

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
      await factory.cleanup?.();
    });

    it('gets, sets, overwrites and deletes', async () => {
      expect(await store.get('a')).toBeNull();
      await store.set('a', 'one');
      expect(await store.get('a')).toBe('one');
      expect(await peer.get('a')).toBe('one');
      await store.set('a', 'two');
      expect(await store.get('a')).toBe('two');
      expect(await store.delete('a')).toBe(true);
      expect(await store.delete('a')).toBe(false);
      expect(await store.get('a')).toBeNull();
    });

    it('keeps strings exactly, including unicode and JSON', async () => {
      const value = JSON.stringify({ emoji: '🔑', nested: { n: 1 }, quote: '"\n' });
      await store.set('json:ü', value);
      expect(await peer.get('json:ü')).toBe(value);
      await store.set('empty', '');
      expect(await store.get('empty')).toBe('');
    });

    it('expires entries after their TTL, and a plain set clears the TTL', async () => {
      await store.set('short', 'v', { ttlMs: 100 });
      await store.set('kept', 'v', { ttlMs: 100 });
      await store.set('kept', 'v2');
      expect(await store.get('short')).toBe('v');
      await passTime(150);
      expect(await store.get('short')).toBeNull();
      expect(await store.delete('short')).toBe(false);
      expect(await store.get('kept')).toBe('v2');
      expect((await store.scan('short')).entries).toEqual([]);
    });

    it('compareAndSet writes only when the current value matches', async () => {
      expect(await store.compareAndSet('doc', null, 'v1')).toBe(true);
      expect(await peer.compareAndSet('doc', null, 'other')).toBe(false);
      expect(await store.compareAndSet('doc', 'wrong', 'v2')).toBe(false);
      expect(await store.get('doc')).toBe('v1');
      expect(await peer.compareAndSet('doc', 'v1', 'v2')).toBe(true);
      expect(await store.get('doc')).toBe('v2');
      expect(await store.compareAndSet('absent', 'v1', 'x')).toBe(false);
      expect(await store.get('absent')).toBeNull();
    });

    it('compareAndSet with null expected succeeds on an expired key and honours ttlMs', async () => {
      await store.set('session', 'old', { ttlMs: 100 });
      expect(await store.compareAndSet('session', null, 'new')).toBe(false);
      await passTime(150);
      expect(await store.compareAndSet('session', null, 'new', { ttlMs: 100 })).toBe(true);
      expect(await store.get('session')).toBe('new');
      await passTime(150);
      expect(await store.get('session')).toBeNull();
    });

    it('loses no update under 50 concurrent CAS increments from two instances', async () => {
      await store.set('cas-counter', '0');
      const bump = async (s: Store): Promise<number> => {
        for (let attempt = 1; ; attempt++) {
          const current = await s.get('cas-counter');
          if (await s.compareAndSet('cas-counter', current, String(Number(current) + 1))) return attempt;
        }
      };
      await Promise.all(Array.from({ length: 50 }, (_, i) => bump(i % 2 === 0 ? store : peer)));
      expect(await peer.get('cas-counter')).toBe('50');
    });

    it('take hands the value to exactly one of 20 concurrent callers', async () => {
      await store.set('one-time', 'secret-value');
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : peer).take('one-time')),
      );
      expect(results.filter((r) => r !== null)).toEqual(['secret-value']);
      expect(await store.get('one-time')).toBeNull();
      expect(await store.take('one-time')).toBeNull();
    });

    it('take ignores an expired value', async () => {
      await store.set('otp', '123', { ttlMs: 100 });
      await passTime(150);
      expect(await store.take('otp')).toBeNull();
    });

    it('lists 2,500 members of a collection page by page, in order, without duplicates, misses, nested collections or other keys', async () => {
      const expected = new Map<string, string>();
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 2500; i++) {
        const key = `p/${String(i).padStart(5, '0')}`;
        expected.set(key, `v${i}`);
        writes.push(store.set(key, `v${i}`));
      }
      for (const other of ['q/1', 'p', 'P/1', 'xp/1', 'p/nested/1', 'p:1', 'pp/1'])
        writes.push(store.set(other, 'no'));
      await Promise.all(writes);

      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await peer.list('p/', { limit: 100, ...(cursor === undefined ? {} : { cursor }) });
        pages++;
        for (const entry of page.entries) {
          expect(entry.value).toBe(expected.get(entry.key));
          seen.push(entry.key);
        }
        cursor = page.cursor ?? undefined;
      } while (cursor !== undefined && pages < 1000);

      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.length).toBe(2500);
      expect(seen).toEqual([...seen].sort());
      expect(pages).toBeGreaterThan(10);
      expect((await store.list('nothing-here/')).entries).toEqual([]);
      expect((await store.list('nothing-here/')).cursor).toBeNull();
      expect((await store.list('p/nested/')).entries).toEqual([{ key: 'p/nested/1', value: 'no' }]);
    });

    it('requires a collection name ending with "/" and refuses keys ending with "/"', async () => {
      await store.set('c/1', 'v');
      for (const bad of ['c', '', 'c/1']) {
        await expect(store.list(bad)).rejects.toMatchObject({
          name: 'KeywardError',
          code: 'invalid_argument',
        });
      }
      await expect(store.set('c/', 'v')).rejects.toMatchObject({ code: 'invalid_argument' });
      await expect(store.get('c/')).rejects.toMatchObject({ code: 'invalid_argument' });
      expect((await store.list('c/')).entries).toEqual([{ key: 'c/1', value: 'v' }]);
    });

    it('continues a paged listing stably while members are added and removed', async () => {
      for (const id of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) await store.set(`s/${id}`, id);
      const first = await store.list('s/', { limit: 3 });
      expect(first.entries.map((e) => e.key)).toEqual(['s/a', 's/b', 's/c']);
      if (first.cursor === null) throw new Error('expected a cursor');
      await store.delete('s/a'); // before the cursor: must not shift what comes next
      await store.delete('s/e'); // after it: must not be listed any more
      await store.set('s/ba', 'ba'); // before the cursor: not listed again on later pages
      await store.set('s/h', 'h'); // after it: listed
      const rest = await readAll(
        (o) => peer.list('s/', { ...o, cursor: o.cursor ?? (first.cursor as string) }),
        2,
      );
      expect(rest.keys).toEqual(['s/d', 's/f', 's/g', 's/h']);
    });

    it('drops members from the listing when they expire, are taken or deleted', async () => {
      await store.set('t/short', 'v', { ttlMs: 100 });
      await store.compareAndSet('t/cas-short', null, 'v', { ttlMs: 100 });
      await store.set('t/renewed', 'v', { ttlMs: 100 });
      await store.set('t/renewed', 'kept'); // a plain set clears the TTL, in the listing too
      await store.set('t/taken', 'v');
      await store.set('t/deleted', 'v');
      await store.set('t/stays', 'v', { ttlMs: 60_000 });
      expect((await readAll((o) => store.list('t/', o))).keys).toEqual([
        't/cas-short',
        't/deleted',
        't/renewed',
        't/short',
        't/stays',
        't/taken',
      ]);
      expect(await peer.take('t/taken')).toBe('v');
      expect(await peer.delete('t/deleted')).toBe(true);
      await passTime(150);
      const after = await readAll((o) => peer.list('t/', o));
      expect(after.keys).toEqual(['t/renewed', 't/stays']);
      expect(after.values.get('t/renewed')).toBe('kept');
      // An expired member written again is listed again.
      await store.set('t/short', 'back');
      expect((await readAll((o) => store.list('t/', o))).keys).toEqual(['t/renewed', 't/short', 't/stays']);
    });

    it('lists members written by increment and compareAndSet', async () => {
      expect(await store.increment('n/a', 2)).toBe(2);
      expect(await store.compareAndSet('n/b', null, 'x')).toBe(true);
      const all = await readAll((o) => peer.list('n/', o));
      expect([...all.values]).toEqual([
        ['n/a', '2'],
        ['n/b', 'x'],
      ]);
    });

    it('scans every live key under a prefix, nested collections and standalone keys included', async () => {
      const expected = new Map<string, string>();
      const writes: Promise<void>[] = [];
      const add = (key: string, value: string) => {
        expected.set(key, value);
        writes.push(store.set(key, value));
      };
      for (let i = 0; i < 300; i++) add(`w:${i}`, `s${i}`);
      for (let i = 0; i < 300; i++) add(`w:c/${i}`, `m${i}`);
      for (let i = 0; i < 300; i++) add(`w:c/d/${i}`, `n${i}`);
      add('w:', 'exact');
      for (const other of ['x:1', 'W:1', 'x/w:1', 'ww/1']) writes.push(store.set(other, 'no'));
      writes.push(store.set('w:gone', 'v', { ttlMs: 100 }));
      await Promise.all(writes);
      await passTime(150);
      const all = await readAll((o) => peer.scan('w:', o), 100);
      expect(new Map([...all.values])).toEqual(expected);
      // It really pages: several pages of ~100, continued by cursor. Not "more than 5": Redis SCAN
      // may hand a page well over the limit hint (the contract allows more, CI saw 5 pages of ~180).
      expect(all.pages).toBeGreaterThanOrEqual(3);
      const nested = await readAll((o) => peer.scan('w:c/d', o));
      expect(new Set(nested.keys).size).toBe(300);
      const member = await readAll((o) => peer.scan('w:c/1', o));
      expect(new Set(member.keys)).toEqual(
        new Set([
          'w:c/1',
          ...Array.from({ length: 10 }, (_, i) => `w:c/1${i}`),
          ...Array.from({ length: 100 }, (_, i) => `w:c/1${String(i).padStart(2, '0')}`),
        ]),
      );
      expect((await store.scan('nothing-here')).entries).toEqual([]);
      await expect(store.scan('w:', { cursor: '!!not a cursor' })).rejects.toMatchObject({
        code: 'invalid_argument',
      });
    });

    it.runIf(factory.touched !== undefined)(
      'lists a 5-member collection next to 100k other keys reading only that collection',
      async () => {
        const noise: Array<readonly [string, string]> = [];
        for (let i = 0; i < 50_000; i++) noise.push([`noise:${i}`, 'x']);
        for (let i = 0; i < 50_000; i++) noise.push([`noise/${i}`, 'x']);
        for (let i = 0; i < 20; i++) noise.push([`target/nested/${i}`, 'x']);
        if (factory.fill) await factory.fill(store, noise);
        else
          for (let i = 0; i < noise.length; i += 1000)
            await Promise.all(noise.slice(i, i + 1000).map(([k, v]) => store.set(k, v)));
        for (let i = 0; i < 5; i++) await store.set(`target/${i}`, `v${i}`, i === 4 ? { ttlMs: 60_000 } : {});
        expect(await store.get('noise/49999')).toBe('x');
        const touched = factory.touched as () => Promise<number>;
        await touched(); // forget the writes
        const page = await store.list('target/');
        const read = await touched();
        expect(page.entries.map((e) => e.key)).toEqual([
          'target/0',
          'target/1',
          'target/2',
          'target/3',
          'target/4',
        ]);
        expect(page.cursor).toBeNull();
        expect(read).toBeGreaterThan(0); // the hook does see the listing's reads
        expect(read).toBeLessThanOrEqual(50);
      },
      120_000,
    );

    it('increments atomically under concurrency, keeping the counter readable', async () => {
      expect(await store.increment('hits')).toBe(1);
      expect(await store.increment('hits', 5)).toBe(6);
      expect(await store.increment('hits', -2)).toBe(4);
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? store : peer).increment('hits')),
      );
      expect(await store.get('hits')).toBe('104');
    });

    it('increment with ttlMs gives a new counter an expiry and keeps an existing one (regression #11: limiter counters expire)', async () => {
      expect(await store.increment('window', 1, { ttlMs: 100 })).toBe(1);
      // Later increments (here from the other instance) neither extend nor drop the expiry.
      expect(await peer.increment('window', 1, { ttlMs: 60_000 })).toBe(2);
      expect(await store.increment('window')).toBe(3);
      expect(await store.increment('window:kept', 1)).toBe(1);
      expect(await store.increment('window:kept', 1, { ttlMs: 100 })).toBe(2); // had none: gets one
      await store.increment('c/member', 4, { ttlMs: 100 });
      expect((await readAll((o) => store.list('c/', o))).keys).toEqual(['c/member']);
      await passTime(150);
      expect(await store.get('window')).toBeNull();
      expect(await store.get('window:kept')).toBeNull();
      expect((await readAll((o) => peer.list('c/', o))).keys).toEqual([]);
      // An expired counter starts again from 0, with a new expiry.
      expect(await peer.increment('window', 1, { ttlMs: 100 })).toBe(1);
      await passTime(150);
      expect(await store.get('window')).toBeNull();
      await expect(store.increment('n', 1, { ttlMs: 0 })).rejects.toMatchObject({ code: 'invalid_argument' });
    });

    it('rejects increment of a non-integer value and bad arguments with KeywardError', async () => {
      await store.set('text', 'hello');
      await expect(store.increment('text')).rejects.toMatchObject({
        name: 'KeywardError',
        code: 'store_error',
      });
      await expect(store.increment('n', 1.5)).rejects.toMatchObject({ code: 'invalid_argument' });
      await expect(store.set('k', 'v', { ttlMs: -1 })).rejects.toMatchObject({ code: 'invalid_argument' });
      await expect(store.get('')).rejects.toMatchObject({ code: 'invalid_argument' });
      await expect(store.acquireLock('l', 0)).rejects.toMatchObject({ code: 'invalid_argument' });
      await expect(store.list('p/', { cursor: '!!not a cursor' })).rejects.toMatchObject({
        code: 'invalid_argument',
      });
    });

    it('grants a lock to one holder at a time, across instances', async () => {
      const first = await store.acquireLock('rotation', 10_000);
      expect(first).not.toBeNull();
      expect(await peer.acquireLock('rotation', 10_000)).toBeNull();
      expect(await first?.isHeld()).toBe(true);
      expect(await first?.release()).toBe(true);
      expect(await first?.release()).toBe(false);
      expect(await first?.isHeld()).toBe(false);
      const second = await peer.acquireLock('rotation', 10_000);
      expect(second?.token).toBeGreaterThan(first?.token ?? Number.POSITIVE_INFINITY);
      await second?.release();
    });

    it('issues strictly increasing fencing tokens per lock name', async () => {
      const tokens: number[] = [];
      for (let i = 0; i < 6; i++) {
        const lock = await (i % 2 === 0 ? store : peer).acquireLock('fenced', 10_000);
        if (!lock) throw new Error('lock not acquired');
        tokens.push(lock.token);
        await lock.release();
      }
      expect(tokens.every((t, i) => i === 0 || t > (tokens[i - 1] as number))).toBe(true);
      const concurrent = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? store : peer).acquireLock('race', 10_000)),
      );
      expect(concurrent.filter((l) => l !== null)).toHaveLength(1);
    });

    it('lets another holder in after expiry; the old holder can then neither release nor extend', async () => {
      const old = await store.acquireLock('job', 100);
      if (!old) throw new Error('lock not acquired');
      await passTime(150);
      const next = await peer.acquireLock('job', 10_000);
      if (!next) throw new Error('expired lock was not granted again');
      expect(next.token).toBeGreaterThan(old.token);
      expect(await old.isHeld()).toBe(false);
      expect(await old.extend(10_000)).toBe(false);
      expect(await old.release()).toBe(false);
      expect(await next.isHeld()).toBe(true);
      expect(await next.release()).toBe(true);
    });

    it('extend keeps a lock past its first TTL', async () => {
      const lock = await store.acquireLock('long', 100);
      if (!lock) throw new Error('lock not acquired');
      expect(await lock.extend(10_000)).toBe(true);
      await passTime(150);
      expect(await lock.isHeld()).toBe(true);
      expect(await peer.acquireLock('long', 100)).toBeNull();
    });

    it('delivers published messages to a subscriber on a peer instance, per channel', async () => {
      const got: string[] = [];
      const other: string[] = [];
      const off = await peer.subscribe('keys', (m) => got.push(m));
      const offOther = await peer.subscribe('other', (m) => other.push(m));
      await store.publish('keys', 'rotated:1');
      await store.publish('keys', 'rotated:2');
      await waitFor(got, 2);
      expect(got).toEqual(['rotated:1', 'rotated:2']);
      expect(other).toEqual([]);
      await off();
      await offOther();
    });

    it('stops delivery after unsubscribe', async () => {
      const stopped: string[] = [];
      const still: string[] = [];
      const off = await peer.subscribe('events', (m) => stopped.push(m));
      await peer.subscribe('events', (m) => still.push(m));
      await store.publish('events', 'before');
      await waitFor(stopped, 1);
      await off();
      await store.publish('events', 'after');
      // Messages on one channel arrive in order, so once `still` has "after", `stopped` would have it too.
      await waitFor(still, 2);
      expect(still).toEqual(['before', 'after']);
      expect(stopped).toEqual(['before']);
    });

    it('answers ping with a latency', async () => {
      const ms = await store.ping();
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThan(5000);
    });

    it('closes idempotently and then refuses work with store_unavailable', async () => {
      await store.close();
      await store.close();
      await expect(store.get('a')).rejects.toMatchObject({ name: 'KeywardError', code: 'store_unavailable' });
    });
  });
}
