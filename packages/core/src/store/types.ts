/**
 * The one storage seam. Everything persistent in keyward goes through a {@link Store}:
 * keys, refresh-token families, API keys, secrets, revocations, audit cursor.
 *
 * Values are strings (keyward stores JSON). Keys are plain strings; each driver adds its own
 * namespace prefix (and, for Redis, a cluster hash tag), so callers never see it.
 *
 * Collections: a key containing `/` is a member of a collection, the collection being everything
 * up to and including its last `/` (`apikey-owner:b3du/kw123` is member `kw123` of
 * `apikey-owner:b3du/`). Member ids never contain `/` (callers encode them), and a key never ends
 * with `/`. A key without `/` is a standalone key. Every driver keeps an index per collection, so
 * {@link Store.list} costs O(members of the collection), never O(database); on Redis a member
 * shares the cluster slot of its collection, and different collections spread over the slots.
 *
 * Failure contract: a driver that cannot reach its backend throws a `KeywardError` with code
 * `store_unavailable`; any other backend failure is `store_error`. A driver never swallows an
 * error and never reports success for a write that did not happen.
 */

/** Options of {@link Store.set} and {@link Store.compareAndSet}. */
export interface StoreSetOptions {
  /** Time to live in milliseconds. Absent: the entry never expires. */
  ttlMs?: number;
}

/** One entry returned by {@link Store.list} and {@link Store.scan}. */
export interface StoreEntry {
  key: string;
  value: string;
}

/** Options of {@link Store.list} and {@link Store.scan}. */
export interface StoreListOptions {
  /** Opaque cursor from a previous page of the same call; absent for the first page. */
  cursor?: string;
  /**
   * Page size hint. Default 1000. A driver may return fewer (Redis caps a `list` page at 1000 and
   * skips members that expired since they were indexed) or, for Redis `scan`, slightly more; only
   * a `null` cursor means the walk is complete.
   */
  limit?: number;
}

/** One page of {@link Store.list} or {@link Store.scan}. */
export interface StoreListPage {
  entries: StoreEntry[];
  /** Cursor for the next page, or `null` when the listing is complete. */
  cursor: string | null;
}

/**
 * A held lock. `token` is a fencing token: it strictly increases each time the named lock is
 * granted, across processes, so a writer that was paused past its TTL can be told apart from
 * the current holder.
 */
export interface StoreLock {
  readonly name: string;
  /** Monotonic fencing token (1, 2, 3… per lock name). */
  readonly token: number;
  /** Extends the TTL. Resolves `false` if the lock is no longer ours (expired and taken). */
  extend(ttlMs: number): Promise<boolean>;
  /** Releases the lock if still ours. Resolves `false` if it had already expired or was taken. */
  release(): Promise<boolean>;
  /** True while the holder still owns the lock (checks the backend). */
  isHeld(): Promise<boolean>;
}

/** A message handler for {@link Store.subscribe}. */
export type StoreMessageHandler = (message: string) => void;

/**
 * The storage interface every driver implements (memory, sqlite, redis).
 *
 * @example
 * ```ts
 * const store = createMemoryStore()
 * await store.set('greeting', 'hello', { ttlMs: 60_000 })
 * await store.compareAndSet('counter-doc', null, '{"n":1}') // create only if absent
 * ```
 */
export interface Store {
  /** Driver name: `memory`, `sqlite` or `redis`. */
  readonly driver: string;
  /** Returns the value, or `null` when absent or expired. */
  get(key: string): Promise<string | null>;
  /** Writes a value, replacing any previous one. */
  set(key: string, value: string, options?: StoreSetOptions): Promise<void>;
  /** Deletes a key. Resolves `true` if it existed. */
  delete(key: string): Promise<boolean>;
  /**
   * Atomically writes `value` only if the current value equals `expected`
   * (`null` = the key must be absent or expired). Resolves `true` when written.
   */
  compareAndSet(
    key: string,
    expected: string | null,
    value: string,
    options?: StoreSetOptions,
  ): Promise<boolean>;
  /**
   * Atomically reads and deletes a key: of several concurrent callers, exactly one gets the
   * value, the others get `null` (one-time tokens, refresh-token spending).
   */
  take(key: string): Promise<string | null>;
  /**
   * Lists the live members of exactly one collection (`collection` must end with `/`, else
   * `invalid_argument`), page by page, in a stable order (by member id) that later pages continue.
   * Members of nested collections (`a/b/x` under `a/`) are not included. Costs O(members) on every
   * driver, whatever else the database holds: safe on a request path.
   *
   * @example
   * ```ts
   * await store.set('apikey-owner:b3du/kw123', '1')
   * const { entries, cursor } = await store.list('apikey-owner:b3du/', { limit: 100 })
   * ```
   */
  list(collection: string, options?: StoreListOptions): Promise<StoreListPage>;
  /**
   * Walks every live entry whose key starts with `prefix` (standalone keys and members of any
   * collection, nested ones included), page by page; the order is the driver's. On Redis this is
   * SCAN over the whole database (every master node of a cluster), so it costs O(database): use it
   * only in background jobs (rewrap, counting, the CLI), never on a request path or at start-up.
   * An entry written during the walk may or may not be seen; Redis may return an entry twice.
   *
   * @example
   * ```ts
   * let cursor: string | null = null
   * do {
   *   const page = await store.scan('secret:', cursor === null ? {} : { cursor })
   *   for (const { key } of page.entries) console.log(key)
   *   cursor = page.cursor
   * } while (cursor !== null)
   * ```
   */
  scan(prefix: string, options?: StoreListOptions): Promise<StoreListPage>;
  /**
   * Atomically adds `by` (default 1) to an integer counter (absent = 0); resolves the new value.
   * With `ttlMs`, a counter that has no expiry after the addition (a new one) gets one, in the same
   * atomic step; a counter that already expires keeps its expiry (fixed-window counters, the
   * login limiter). Without it the expiry is left as it was.
   *
   * @example
   * ```ts
   * const hits = await store.increment(`hits:${bucket}`, 1, { ttlMs: 120_000 })
   * ```
   */
  increment(key: string, by?: number, options?: StoreSetOptions): Promise<number>;
  /** Tries once to take the named lock for `ttlMs`. Resolves `null` if someone else holds it. */
  acquireLock(name: string, ttlMs: number): Promise<StoreLock | null>;
  /** Publishes a message to every subscriber of `channel`, in this and other processes. */
  publish(channel: string, message: string): Promise<void>;
  /** Subscribes to a channel. Resolves an unsubscribe function once the subscription is live. */
  subscribe(channel: string, handler: StoreMessageHandler): Promise<() => Promise<void>>;
  /** Round-trip check used by health: resolves the latency in ms or throws `store_unavailable`. */
  ping(): Promise<number>;
  /** Closes what the driver created (never a client passed in by the caller). Idempotent. */
  close(): Promise<void>;
  /**
   * The backend's clock in epoch ms (Redis: `TIME`; SQLite and memory: the host clock). Optional:
   * the rotation scheduler compares it with its own clock and does not activate or retire keys
   * while they differ by more than `clockSkew`. A driver without it skips that check.
   */
  time?(): Promise<number>;
}
