import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { KeywardError } from '../errors.js';
import {
  checkCollection,
  checkHandler,
  checkIncrement,
  checkKey,
  checkStoreKey,
  checkTtl,
  checkValue,
  closedError,
  decodeKeyCursor,
  encodeKeyCursor,
  limitOf,
  parseCounter,
  ttlOf,
} from './arguments.js';
import type { SqliteDatabaseHandle } from './driver-handles.js';
import { createSqliteEvents, type SqliteEvents } from './sqlite-events.js';
import { collectionColumn, migrateSqliteSchema, sqliteError } from './sqlite-schema.js';
import type { Store, StoreLock } from './types.js';

/** Options of {@link createSqliteStore}. */
export interface SqliteStoreOptions {
  /** Database file; several processes may open the same file. `:memory:` works for one handle. */
  path: string;
  /** Namespace separating several keyward stores in one file. Default `keyward`. */
  namespace?: string;
  /** How often subscribers poll the events table, in ms (only while someone is subscribed). Default 50. */
  pollIntervalMs?: number;
  /** How long published events are kept for slow pollers, in ms. Default 60 000. */
  eventRetentionMs?: number;
  /** How long a write waits for another process's write lock (`busy_timeout`), in ms. Default 5000. */
  busyTimeoutMs?: number;
  /** Clock in epoch milliseconds for TTLs, locks and event pruning. Default `Date.now`. */
  now?: () => number;
  /**
   * An open database to use instead of opening `path`; the store never closes it, and leaves its
   * pragmas alone (set `journal_mode = WAL` and a `busy_timeout` yourself for cross-process use).
   * A better-sqlite3 `Database` (typed structurally, so the types need no `@types/better-sqlite3`).
   */
  database?: SqliteDatabaseHandle;
}

const SWEEP_EVERY_MS = 60_000;

function positive(value: number | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new KeywardError('config_invalid', `createSqliteStore: ${option} must be a positive number`, {
      details: { option },
    });
  }
  return value;
}

/** Prepared statements of one sqlite store (one namespace). */
function prepareStatements(db: Database.Database) {
  const live = '(expires_at IS NULL OR expires_at > @now)';
  return {
    get: db.prepare<{ ns: string; key: string; now: number }, { value: string; expires_at: number | null }>(
      `SELECT value, expires_at FROM keyward_kv WHERE ns = @ns AND key = @key AND ${live}`,
    ),
    upsert: db.prepare<{
      ns: string;
      key: string;
      value: string;
      expiresAt: number | null;
      collection: string | null;
    }>(
      `INSERT INTO keyward_kv (ns, key, value, expires_at, collection) VALUES (@ns, @key, @value, @expiresAt, @collection)
       ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
    ),
    remove: db.prepare<{ ns: string; key: string }, { value: string; expires_at: number | null }>(
      'DELETE FROM keyward_kv WHERE ns = @ns AND key = @key RETURNING value, expires_at',
    ),
    // An index range read on keyward_kv_collection: only the collection's own rows are visited.
    list: db.prepare<
      { ns: string; collection: string; after: string | null; now: number; limit: number },
      { key: string; value: string }
    >(
      `SELECT key, value FROM keyward_kv INDEXED BY keyward_kv_collection
       WHERE ns = @ns AND collection = @collection AND key > COALESCE(@after, '') AND ${live}
       ORDER BY key LIMIT @limit`,
    ),
    scan: db.prepare<
      { ns: string; prefix: string; after: string | null; now: number; limit: number },
      { key: string; value: string }
    >(
      // x'F5' is above every lead byte of valid UTF-8, so `prefix || x'F5'` bounds the prefix range
      // under the BINARY collation and the primary-key index serves the scan.
      `SELECT key, value FROM keyward_kv
       WHERE ns = @ns AND key >= @prefix AND key < CAST(@prefix || x'F5' AS TEXT)
         AND (@after IS NULL OR key > @after) AND ${live}
       ORDER BY key LIMIT @limit`,
    ),
    sweep: db.prepare<{ ns: string; now: number }>(
      'DELETE FROM keyward_kv WHERE ns = @ns AND expires_at IS NOT NULL AND expires_at <= @now',
    ),
    lock: db.prepare<
      { ns: string; name: string },
      { holder: string | null; expires_at: number; token: number }
    >('SELECT holder, expires_at, token FROM keyward_locks WHERE ns = @ns AND name = @name'),
    grantLock: db.prepare<{ ns: string; name: string; holder: string; expiresAt: number; token: number }>(
      `INSERT INTO keyward_locks (ns, name, holder, expires_at, token) VALUES (@ns, @name, @holder, @expiresAt, @token)
       ON CONFLICT (ns, name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, token = excluded.token`,
    ),
    extendLock: db.prepare<{ ns: string; name: string; holder: string; now: number; expiresAt: number }>(
      `UPDATE keyward_locks SET expires_at = @expiresAt
       WHERE ns = @ns AND name = @name AND holder = @holder AND expires_at > @now`,
    ),
    releaseLock: db.prepare<{ ns: string; name: string; holder: string; now: number }>(
      `UPDATE keyward_locks SET holder = NULL
       WHERE ns = @ns AND name = @name AND holder = @holder AND expires_at > @now`,
    ),
    heldLock: db.prepare<{ ns: string; name: string; holder: string; now: number }, { token: number }>(
      'SELECT token FROM keyward_locks WHERE ns = @ns AND name = @name AND holder = @holder AND expires_at > @now',
    ),
    ping: db.prepare<[], { one: number }>('SELECT 1 AS one'),
  };
}

/**
 * Makes a database file owner-only (0600): creates it so when `create` and it is missing (an empty
 * file is a valid new database), and tightens an existing one (a file an older version created 0644).
 * A file this process may not chmod (another user's) is left as it is; opening it then decides.
 */
function ownerOnly(path: string, create: boolean): void {
  // Never open and close a file that may already be open: closing any descriptor of a database
  // file drops every POSIX lock this process holds on it, including another connection's
  // (sqlite.org/howtocorrupt.html §2.2). An existing file is changed by path; only a file this
  // call creates itself (`wx`: it did not exist, so no connection has it) gets a descriptor.
  if (create) {
    let fd: number | undefined;
    try {
      fd = openSync(path, 'wx', 0o600);
      fchmodSync(fd, 0o600); // the umask may have taken bits off
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return; // opening it will say why
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  try {
    chmodSync(path, 0o600); // an older, wider file; a missing -wal / -shm is fine
  } catch {
    // absent, or not ours to change: opening it decides
  }
}

/**
 * A durable {@link Store} on one SQLite file (better-sqlite3, WAL mode), safe across processes
 * on one machine: every read-modify-write runs in a `BEGIN IMMEDIATE` transaction, and pub/sub
 * goes through an events table that subscribers poll.
 *
 * @example
 * ```ts
 * const store = createSqliteStore({ path: './keyward.db' })
 * const lock = await store.acquireLock('rotation', 30_000)
 * if (lock) try { await rotate(lock.token) } finally { await lock.release() }
 * ```
 */
export function createSqliteStore(options: SqliteStoreOptions): Store {
  const ns = options.namespace ?? 'keyward';
  if (typeof ns !== 'string' || ns.length === 0) {
    throw new KeywardError('config_invalid', 'createSqliteStore: namespace must be a non-empty string', {
      details: { option: 'namespace' },
    });
  }
  if (options.database === undefined && (typeof options.path !== 'string' || options.path.length === 0)) {
    throw new KeywardError('config_invalid', 'createSqliteStore: path must be a file path or ":memory:"', {
      details: { option: 'path' },
    });
  }
  const pollIntervalMs = positive(options.pollIntervalMs, 50, 'pollIntervalMs');
  const retentionMs = positive(options.eventRetentionMs, 60_000, 'eventRetentionMs');
  const busyTimeoutMs = positive(options.busyTimeoutMs, 5000, 'busyTimeoutMs');
  const now = options.now ?? Date.now;
  const owned = options.database === undefined;

  let db: Database.Database | undefined;
  let sql: ReturnType<typeof prepareStatements>;
  let events: SqliteEvents;
  try {
    // A fresh deployment has no data folder yet: create it (owner-only) rather than fail at start.
    const onDisk = !options.database && options.path !== ':memory:' && !options.path.startsWith('file:');
    if (onDisk) {
      mkdirSync(dirname(options.path), { recursive: true, mode: 0o700 });
      // The file holds sealed keys and sessions: owner-only, whatever the folder's mode and the umask.
      // SQLite creates the -wal and -shm files with the database file's mode.
      ownerOnly(options.path, true);
    }
    db =
      (options.database as Database.Database | undefined) ??
      new Database(options.path, { timeout: busyTimeoutMs });
    if (owned) {
      db.pragma('journal_mode = WAL');
      // NORMAL is durable across process crashes in WAL mode; only a power loss can drop the last commits.
      db.pragma('synchronous = NORMAL');
    }
    if (onDisk) for (const suffix of ['-wal', '-shm']) ownerOnly(`${options.path}${suffix}`, false);
    migrateSqliteSchema(db);
    sql = prepareStatements(db);
    events = createSqliteEvents(db, { ns, now, pollIntervalMs, retentionMs });
  } catch (err) {
    if (owned) db?.close();
    throw sqliteError(err, 'open');
  }
  const database = db;

  let lastSweep = now();
  let closed = false;

  async function run<T>(operation: string, fn: () => T): Promise<T> {
    if (closed) throw closedError('sqlite');
    try {
      return fn();
    } catch (err) {
      throw sqliteError(err, operation);
    }
  }

  function sweepIfDue(t: number): void {
    if (t - lastSweep < SWEEP_EVERY_MS) return;
    lastSweep = t;
    sql.sweep.run({ ns, now: t });
  }

  function write(key: string, value: string, ttl: number | undefined, t: number): void {
    sql.upsert.run({
      ns,
      key,
      value,
      expiresAt: ttl === undefined ? null : t + ttl,
      collection: collectionColumn(key),
    });
    sweepIfDue(t);
  }

  const compareAndSet = database.transaction(
    (key: string, expected: string | null, value: string, ttl?: number) => {
      const t = now();
      if ((sql.get.get({ ns, key, now: t })?.value ?? null) !== expected) return false;
      write(key, value, ttl, t);
      return true;
    },
  );

  const increment = database.transaction((key: string, by: number, ttl: number | undefined) => {
    const t = now();
    const row = sql.get.get({ ns, key, now: t });
    const next = parseCounter(row?.value) + by;
    sql.upsert.run({
      ns,
      key,
      value: String(next),
      expiresAt: row?.expires_at ?? (ttl === undefined ? null : t + ttl),
      collection: collectionColumn(key),
    });
    return next;
  });

  const acquire = database.transaction((name: string, holder: string, ttl: number) => {
    const t = now();
    const row = sql.lock.get({ ns, name });
    if (row !== undefined && row.holder !== null && row.expires_at > t) return null;
    const token = (row?.token ?? 0) + 1;
    sql.grantLock.run({ ns, name, holder, expiresAt: t + ttl, token });
    return token;
  });

  function makeLock(name: string, holder: string, token: number): StoreLock {
    return {
      name,
      token,
      async extend(ttlMs: number) {
        const ttl = checkTtl(ttlMs);
        return run('lock.extend', () => {
          const t = now();
          return sql.extendLock.run({ ns, name, holder, now: t, expiresAt: t + ttl }).changes === 1;
        });
      },
      release: async () =>
        run('lock.release', () => sql.releaseLock.run({ ns, name, holder, now: now() }).changes === 1),
      isHeld: async () =>
        run('lock.isHeld', () => sql.heldLock.get({ ns, name, holder, now: now() }) !== undefined),
    };
  }

  return {
    driver: 'sqlite',
    async get(key) {
      checkStoreKey(key);
      return run('get', () => sql.get.get({ ns, key, now: now() })?.value ?? null);
    },
    async set(key, value, setOptions) {
      checkStoreKey(key);
      checkValue(value);
      const ttl = ttlOf(setOptions);
      return run('set', () => write(key, value, ttl, now()));
    },
    async delete(key) {
      checkStoreKey(key);
      return run('delete', () => {
        const row = sql.remove.get({ ns, key });
        return row !== undefined && (row.expires_at === null || row.expires_at > now());
      });
    },
    async compareAndSet(key, expected, value, setOptions) {
      checkStoreKey(key);
      if (expected !== null) checkValue(expected, 'expected');
      checkValue(value);
      const ttl = ttlOf(setOptions);
      return run('compareAndSet', () => compareAndSet.immediate(key, expected, value, ttl));
    },
    async take(key) {
      checkStoreKey(key);
      return run('take', () => {
        // DELETE … RETURNING is one statement, so of several takers only one sees the row.
        const row = sql.remove.get({ ns, key });
        return row !== undefined && (row.expires_at === null || row.expires_at > now()) ? row.value : null;
      });
    },
    async list(collection, listOptions = {}) {
      checkCollection(collection);
      const limit = limitOf(listOptions.limit);
      const afterId = decodeKeyCursor(listOptions.cursor);
      const after = afterId === undefined ? null : collection + afterId;
      return run('list', () => {
        const entries = sql.list.all({ ns, collection, after, now: now(), limit });
        const last = entries.at(-1);
        return {
          entries,
          cursor:
            entries.length === limit && last ? encodeKeyCursor(last.key.slice(collection.length)) : null,
        };
      });
    },
    async scan(prefix, listOptions = {}) {
      checkValue(prefix, 'prefix');
      const limit = limitOf(listOptions.limit);
      const after = decodeKeyCursor(listOptions.cursor) ?? null;
      return run('scan', () => {
        const entries = sql.scan.all({ ns, prefix, after, now: now(), limit });
        const last = entries.at(-1);
        return { entries, cursor: entries.length === limit && last ? encodeKeyCursor(last.key) : null };
      });
    },
    async increment(key, by = 1, incrementOptions) {
      checkStoreKey(key);
      const step = checkIncrement(by);
      const ttl = ttlOf(incrementOptions);
      return run('increment', () => increment.immediate(key, step, ttl));
    },
    async acquireLock(name, ttlMs) {
      checkKey(name, 'name');
      const ttl = checkTtl(ttlMs);
      return run('acquireLock', () => {
        const holder = randomUUID();
        const token = acquire.immediate(name, holder, ttl);
        return token === null ? null : makeLock(name, holder, token);
      });
    },
    async publish(channel, message) {
      checkKey(channel, 'channel');
      checkValue(message, 'message');
      return run('publish', () => events.publish(channel, message));
    },
    async subscribe(channel, handler) {
      checkKey(channel, 'channel');
      checkHandler(handler);
      return run('subscribe', () => {
        const off = events.subscribe(channel, handler);
        return async () => off();
      });
    },
    async ping() {
      return run('ping', () => {
        const start = performance.now();
        sql.ping.get();
        return performance.now() - start;
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      events.stop();
      if (owned) database.close();
    },
    /** The store's clock: an SQLite file has none of its own, so the `now` option (host clock by default). */
    async time() {
      return run('time', () => now());
    },
  };
}
