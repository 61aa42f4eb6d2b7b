import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';
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
  deliver,
  encodeKeyCursor,
  limitOf,
  ttlOf,
} from './arguments.js';
import type { PostgresPoolHandle } from './driver-handles.js';
import type { Store, StoreLock, StoreMessageHandler } from './types.js';

/** Options of {@link createPostgresStore}: give `connectionString` or `pool`. */
export interface PostgresStoreOptions {
  /** `postgres://user:pass@host:port/db`; the store opens (and closes) its own pool. */
  connectionString?: string;
  /**
   * A `pg.Pool` to use instead; the store never ends it. The LISTEN connection is then checked out
   * of this pool and held while someone is subscribed. Typed structurally, so the types need no
   * `@types/pg`.
   */
  pool?: PostgresPoolHandle;
  /** Schema holding keyward's tables (created if missing). Default `public`. */
  schema?: string;
  /**
   * Base name of keyward's tables: `<table>` (entries), `<table>_locks`, `<table>_migrations`.
   * Several keyward deployments share one database with different table names. Default `keyward`.
   */
  table?: string;
  /** How long to wait for a connection before failing with `store_unavailable`, in ms. Default 2000. */
  connectTimeoutMs?: number;
  /**
   * How long one statement may take before it fails with `store_unavailable`, in ms: the server
   * cancels it (`statement_timeout`, so a cancelled write did not happen), and the client gives up
   * 2 s later on a server that stopped answering (then the outcome of a write is unknown). Applies
   * to the pool the store opens. Default 10 000.
   */
  queryTimeoutMs?: number;
  /** Maximum connections of the pool the store opens. Default 10. */
  maxConnections?: number;
  /**
   * Reopen the LISTEN connection (and listen again) when it drops. Default true; `false` is for
   * tests of the polling that repairs a deaf instance.
   */
  resubscribe?: boolean;
}

/**
 * Schema version this driver migrates to (rows of `<table>_migrations`). 1: entries
 * (`key`, `value`, `expires_at` in epoch ms, `collection`), their collection and expiry indexes, and locks.
 */
export const POSTGRES_SCHEMA_VERSION = 1;

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,47}$/;
const SWEEP_EVERY_MS = 60_000;
/** The server clock in epoch ms: every TTL and lock expiry is on the database's clock. */
const NOW = '(extract(epoch from now()) * 1000)::bigint';
const LIVE = `(expires_at IS NULL OR expires_at > ${NOW})`;

function configError(message: string, option: string): KeywardError {
  return new KeywardError('config_invalid', `createPostgresStore: ${message}`, { details: { option } });
}

/** Connection failures, resource exhaustion, a cancelled (timed-out) statement, server shutdown. */
const UNAVAILABLE_SQLSTATE = /^(08|53|57014|57P0[1-3])/;

/**
 * Maps a `pg` failure to a keyward error: no connection (refused, reset, timed out, terminated,
 * server shutting down, too many connections) or a statement past its timeout is
 * `store_unavailable`; any other failure is `store_error`.
 */
export function postgresError(err: unknown, operation: string): KeywardError {
  if (err instanceof KeywardError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const sqlState = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  const unavailable = sqlState === undefined || UNAVAILABLE_SQLSTATE.test(sqlState);
  return new KeywardError(
    unavailable ? 'store_unavailable' : 'store_error',
    `postgres store ${unavailable ? 'is unavailable' : 'failed'} during ${operation}`,
    { cause: err, details: { driver: 'postgres', operation, ...(sqlState ? { sqlState } : {}) } },
  );
}

/** The collection of a store key (up to and including its last `/`), or `null` for a standalone key. */
function collectionColumn(key: string): string | null {
  const slash = key.lastIndexOf('/');
  return slash === -1 ? null : key.slice(0, slash + 1);
}

/** Every SQL statement of one store, on its quoted table names. */
function statements(schema: string, table: string) {
  const kv = `"${schema}"."${table}"`;
  const locks = `"${schema}"."${table}_locks"`;
  const expiry = (param: string) =>
    `CASE WHEN ${param}::bigint IS NULL THEN NULL ELSE ${NOW} + ${param}::bigint END`;
  return {
    kv,
    migrations: `"${schema}"."${table}_migrations"`,
    migrate1: [
      // COLLATE "C": byte order, so listings are ordered like the other drivers and a LIKE prefix
      // is an index range.
      `CREATE TABLE IF NOT EXISTS ${kv} (
         key text COLLATE "C" PRIMARY KEY,
         value text NOT NULL,
         expires_at bigint,
         collection text COLLATE "C"
       )`,
      `CREATE INDEX IF NOT EXISTS "${table}_collection" ON ${kv} (collection, key) WHERE collection IS NOT NULL`,
      `CREATE INDEX IF NOT EXISTS "${table}_expiry" ON ${kv} (expires_at) WHERE expires_at IS NOT NULL`,
      `CREATE TABLE IF NOT EXISTS ${locks} (
         name text COLLATE "C" PRIMARY KEY,
         holder text,
         expires_at bigint NOT NULL,
         token bigint NOT NULL
       )`,
    ],
    get: `SELECT value FROM ${kv} WHERE key = $1 AND ${LIVE}`,
    set: `INSERT INTO ${kv} (key, value, expires_at, collection) VALUES ($1, $2, ${expiry('$3')}, $4)
          ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
    remove: `DELETE FROM ${kv} WHERE key = $1 RETURNING value, ${LIVE} AS live`,
    // Create only if absent or expired: the conflicting row is replaced only when it has expired.
    insertIfAbsent: `INSERT INTO ${kv} AS t (key, value, expires_at, collection) VALUES ($1, $2, ${expiry('$3')}, $4)
          ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
          WHERE t.expires_at IS NOT NULL AND t.expires_at <= ${NOW}
          RETURNING 1`,
    // READ COMMITTED re-checks the WHERE clause on the latest row version after a concurrent update.
    replaceIf: `UPDATE ${kv} SET value = $3, expires_at = ${expiry('$4')}
          WHERE key = $1 AND value = $2 AND ${LIVE} RETURNING 1`,
    increment: `INSERT INTO ${kv} AS t (key, value, expires_at, collection) VALUES ($1, $2::bigint::text, ${expiry('$3')}, $4)
          ON CONFLICT (key) DO UPDATE SET
            value = CASE WHEN t.expires_at IS NULL OR t.expires_at > ${NOW}
                         THEN (t.value::bigint + $2::bigint)::text ELSE excluded.value END,
            expires_at = CASE WHEN t.expires_at IS NULL OR t.expires_at > ${NOW}
                         THEN COALESCE(t.expires_at, excluded.expires_at) ELSE excluded.expires_at END
          RETURNING value`,
    // An index range read on <table>_collection: only the collection's own rows are visited.
    list: `SELECT key, value FROM ${kv} WHERE collection = $1 AND key > $2 AND ${LIVE} ORDER BY key LIMIT $3`,
    // LIKE 'prefix%' under the C collation is a range on the primary key.
    scan: `SELECT key, value FROM ${kv} WHERE key LIKE $1 AND key > $2 AND ${LIVE} ORDER BY key LIMIT $3`,
    sweep: `DELETE FROM ${kv} WHERE key IN (
              SELECT key FROM ${kv} WHERE expires_at IS NOT NULL AND expires_at <= ${NOW} LIMIT 1000)`,
    // The row lock INSERT … ON CONFLICT takes serialises acquirers; the token only ever grows.
    acquire: `INSERT INTO ${locks} AS l (name, holder, expires_at, token) VALUES ($1, $2, ${NOW} + $3::bigint, 1)
          ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, token = l.token + 1
          WHERE l.holder IS NULL OR l.expires_at <= ${NOW}
          RETURNING token`,
    extend: `UPDATE ${locks} SET expires_at = ${NOW} + $3::bigint
          WHERE name = $1 AND holder = $2 AND expires_at > ${NOW}`,
    release: `UPDATE ${locks} SET holder = NULL WHERE name = $1 AND holder = $2 AND expires_at > ${NOW}`,
    held: `SELECT 1 FROM ${locks} WHERE name = $1 AND holder = $2 AND expires_at > ${NOW}`,
  };
}

function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, '\\$&')}%`;
}

/**
 * The NOTIFY channel of a keyward channel: a digest of schema, table and channel (channel names
 * are identifiers of at most 63 bytes), so deployments on one database never hear each other.
 */
function notifyChannel(schema: string, table: string, channel: string): string {
  const digest = createHash('sha256').update(`${schema}\0${table}\0${channel}`).digest('hex').slice(0, 40);
  return `keyward_${digest}`;
}

/**
 * A durable {@link Store} on PostgreSQL (`pg`), shared by any number of processes and machines.
 * keyward creates and migrates its tables itself (versions in `<table>_migrations`, applied under
 * an advisory lock). Every operation is one atomic statement; TTLs are on the server clock and
 * expired rows are invisible at once and deleted lazily (by `delete`/`take` or a periodic sweep
 * after writes), with no cron. Pub/sub is `LISTEN/NOTIFY` on one dedicated connection that
 * reconnects by itself; a message published while it was down is lost, so keyward's sync also polls.
 *
 * @example
 * ```ts
 * const store = createPostgresStore({ connectionString: process.env.DATABASE_URL })
 * const lock = await store.acquireLock('rotation', 30_000)
 * if (lock) try { await rotate(lock.token) } finally { await lock.release() }
 * ```
 */
export function createPostgresStore(options: PostgresStoreOptions): Store {
  const schema = options.schema ?? 'public';
  const table = options.table ?? 'keyward';
  if (typeof schema !== 'string' || !IDENTIFIER.test(schema))
    throw configError('schema must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 48)', 'schema');
  if (typeof table !== 'string' || !IDENTIFIER.test(table))
    throw configError('table must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 48)', 'table');
  const connectTimeoutMs = options.connectTimeoutMs ?? 2000;
  if (!Number.isFinite(connectTimeoutMs) || connectTimeoutMs <= 0)
    throw configError('connectTimeoutMs must be a positive number', 'connectTimeoutMs');
  const queryTimeoutMs = options.queryTimeoutMs ?? 10_000;
  if (!Number.isFinite(queryTimeoutMs) || queryTimeoutMs <= 0)
    throw configError('queryTimeoutMs must be a positive number', 'queryTimeoutMs');
  const owned = options.pool === undefined;
  if (owned && (typeof options.connectionString !== 'string' || options.connectionString.length === 0))
    throw configError('give connectionString or pool', 'connectionString');
  const clientConfig: pg.ClientConfig = {
    connectionString: options.connectionString,
    connectionTimeoutMillis: connectTimeoutMs,
  };
  const poolConfig: pg.PoolConfig = {
    ...clientConfig,
    statement_timeout: queryTimeoutMs,
    query_timeout: queryTimeoutMs + 2000,
  };
  const pool =
    (options.pool as pg.Pool | undefined) ??
    new pg.Pool({ ...poolConfig, max: options.maxConnections ?? 10, idleTimeoutMillis: 30_000 });
  // An idle connection dropped by the server must not crash the process; the next query reconnects.
  const onPoolError = () => {};
  pool.on('error', onPoolError);

  const sql = statements(schema, table);
  let closed = false;
  let lastSweep = Date.now();
  let migrated: Promise<void> | undefined;

  async function migrate(): Promise<void> {
    const client = await pool.connect();
    let failure: Error | undefined;
    try {
      await client.query('BEGIN');
      // One migrator per schema at a time across processes; the lock ends with the transaction.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`keyward:${schema}`]);
      // CREATE SCHEMA checks the CREATE privilege on the database even when the schema exists.
      const schemaRow = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
      if (schemaRow.rowCount === 0) await client.query(`CREATE SCHEMA "${schema}"`);
      // Likewise CREATE TABLE IF NOT EXISTS needs CREATE on the schema: a runtime role with only
      // read/write rights opens an up-to-date database without it.
      const known = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [sql.migrations]);
      if (known.rows[0]?.t == null) {
        await client.query(
          `CREATE TABLE ${sql.migrations} (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
        );
      }
      const { rows } = await client.query<{ v: number | null }>(
        `SELECT max(version) AS v FROM ${sql.migrations}`,
      );
      const version = rows[0]?.v ?? 0;
      if (version > POSTGRES_SCHEMA_VERSION) {
        throw new KeywardError(
          'store_error',
          `postgres store: schema version ${version} is newer than this keyward (${POSTGRES_SCHEMA_VERSION})`,
          { details: { driver: 'postgres', operation: 'migrate' } },
        );
      }
      if (version < 1) {
        for (const statement of sql.migrate1) await client.query(statement);
        await client.query(`INSERT INTO ${sql.migrations} (version) VALUES (1)`);
      }
      await client.query('COMMIT');
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release(failure); // a connection that failed is destroyed, not pooled again
    }
  }

  async function query<R extends pg.QueryResultRow>(
    operation: string,
    text: string,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    if (closed) throw closedError('postgres');
    try {
      // A failed migration (server down) is retried by the next operation.
      migrated ??= migrate().catch((err) => {
        migrated = undefined;
        throw err;
      });
      await migrated;
      return await pool.query<R>(text, values);
    } catch (err) {
      if (closed) throw closedError('postgres');
      throw postgresError(err, operation);
    }
  }

  function sweepIfDue(): void {
    const t = Date.now();
    if (t - lastSweep < SWEEP_EVERY_MS) return;
    lastSweep = t;
    query('sweep', sql.sweep, []).catch(() => {}); // opportunistic: the next one retries
  }

  // --- LISTEN/NOTIFY on one dedicated connection -------------------------------------------
  const handlers = new Map<string, Set<StoreMessageHandler>>(); // notify channel → handlers
  let listener: pg.ClientBase | undefined;
  let releaseListener: (() => void) | undefined;
  let connecting: Promise<pg.ClientBase> | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let backoffMs = 100;

  function dropListener(): void {
    const client = listener;
    listener = undefined;
    const release = releaseListener;
    releaseListener = undefined;
    if (!client) return;
    client.removeAllListeners('notification');
    client.removeAllListeners('end');
    client.on('error', () => {});
    if (release) release();
    else (client as pg.Client).end().catch(() => {});
  }

  function scheduleReconnect(): void {
    if (closed || handlers.size === 0 || reconnectTimer || options.resubscribe === false) return;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      connectListener().catch(() => scheduleReconnect());
    }, backoffMs);
    reconnectTimer.unref();
    backoffMs = Math.min(backoffMs * 2, 2000);
  }

  async function openListener(): Promise<pg.ClientBase> {
    let client: pg.ClientBase;
    if (owned) {
      const own = new pg.Client(clientConfig);
      own.on('error', () => {});
      await own.connect();
      client = own;
    } else {
      const pooled = await pool.connect();
      client = pooled;
      releaseListener = () => pooled.release(true);
    }
    const lost = () => {
      if (listener !== client) return;
      dropListener();
      scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (n) => {
      const set = handlers.get(n.channel);
      if (set) for (const handler of [...set]) deliver(handler, n.payload ?? '');
    });
    try {
      for (const channel of handlers.keys()) await client.query(`LISTEN "${channel}"`);
    } catch (err) {
      listener = client;
      dropListener();
      throw err;
    }
    if (closed) {
      listener = client;
      dropListener();
      throw closedError('postgres');
    }
    listener = client;
    backoffMs = 100;
    return client;
  }

  function connectListener(): Promise<pg.ClientBase> {
    if (listener) return Promise.resolve(listener);
    connecting ??= openListener().finally(() => {
      connecting = undefined;
    });
    return connecting;
  }

  function makeLock(name: string, holder: string, token: number): StoreLock {
    return {
      name,
      token,
      async extend(ttlMs: number) {
        const ttl = checkTtl(ttlMs);
        return (await query('lock.extend', sql.extend, [name, holder, ttl])).rowCount === 1;
      },
      release: async () => (await query('lock.release', sql.release, [name, holder])).rowCount === 1,
      isHeld: async () => (await query('lock.isHeld', sql.held, [name, holder])).rowCount === 1,
    };
  }

  return {
    driver: 'postgres',
    async get(key) {
      checkStoreKey(key);
      const { rows } = await query<{ value: string }>('get', sql.get, [key]);
      return rows[0]?.value ?? null;
    },
    async set(key, value, setOptions) {
      checkStoreKey(key);
      checkValue(value);
      const ttl = ttlOf(setOptions) ?? null;
      await query('set', sql.set, [key, value, ttl, collectionColumn(key)]);
      sweepIfDue();
    },
    async delete(key) {
      checkStoreKey(key);
      const { rows } = await query<{ live: boolean }>('delete', sql.remove, [key]);
      return rows[0]?.live === true;
    },
    async compareAndSet(key, expected, value, setOptions) {
      checkStoreKey(key);
      if (expected !== null) checkValue(expected, 'expected');
      checkValue(value);
      const ttl = ttlOf(setOptions) ?? null;
      const result =
        expected === null
          ? await query('compareAndSet', sql.insertIfAbsent, [key, value, ttl, collectionColumn(key)])
          : await query('compareAndSet', sql.replaceIf, [key, expected, value, ttl]);
      if (result.rowCount === 1) sweepIfDue();
      return result.rowCount === 1;
    },
    async take(key) {
      checkStoreKey(key);
      // DELETE … RETURNING is one statement, so of several takers only one gets the row.
      const { rows } = await query<{ value: string; live: boolean }>('take', sql.remove, [key]);
      const row = rows[0];
      return row?.live ? row.value : null;
    },
    async list(collection, listOptions = {}) {
      checkCollection(collection);
      const limit = limitOf(listOptions.limit);
      const afterId = decodeKeyCursor(listOptions.cursor);
      const after = afterId === undefined ? '' : collection + afterId;
      const { rows } = await query<{ key: string; value: string }>('list', sql.list, [
        collection,
        after,
        limit,
      ]);
      const last = rows.at(-1);
      const entries = rows.map(({ key, value }) => ({ key, value }));
      return {
        entries,
        cursor: rows.length === limit && last ? encodeKeyCursor(last.key.slice(collection.length)) : null,
      };
    },
    async scan(prefix, listOptions = {}) {
      checkValue(prefix, 'prefix');
      const limit = limitOf(listOptions.limit);
      const after = decodeKeyCursor(listOptions.cursor) ?? '';
      const { rows } = await query<{ key: string; value: string }>('scan', sql.scan, [
        likePrefix(prefix),
        after,
        limit,
      ]);
      const last = rows.at(-1);
      const entries = rows.map(({ key, value }) => ({ key, value }));
      return { entries, cursor: rows.length === limit && last ? encodeKeyCursor(last.key) : null };
    },
    async increment(key, by = 1, incrementOptions) {
      checkStoreKey(key);
      const step = checkIncrement(by);
      const ttl = ttlOf(incrementOptions) ?? null;
      let rows: Array<{ value: string }>;
      try {
        ({ rows } = await query<{ value: string }>('increment', sql.increment, [
          key,
          String(step),
          ttl,
          collectionColumn(key),
        ]));
      } catch (err) {
        const sqlState = err instanceof KeywardError ? err.details?.sqlState : undefined;
        if (sqlState === '22P02' || sqlState === '22003') {
          throw new KeywardError('store_error', 'increment: the key does not hold an integer', {
            cause: err,
          });
        }
        throw err;
      }
      const next = Number(rows[0]?.value);
      if (!Number.isSafeInteger(next))
        throw new KeywardError('store_error', 'increment: counter out of range');
      return next;
    },
    async acquireLock(name, ttlMs) {
      checkKey(name, 'name');
      const ttl = checkTtl(ttlMs);
      const holder = randomUUID();
      const { rows } = await query<{ token: string }>('acquireLock', sql.acquire, [name, holder, ttl]);
      const row = rows[0];
      return row === undefined ? null : makeLock(name, holder, Number(row.token));
    },
    async publish(channel, message) {
      checkKey(channel, 'channel');
      checkValue(message, 'message');
      await query('publish', 'SELECT pg_notify($1, $2)', [notifyChannel(schema, table, channel), message]);
    },
    async subscribe(channel, handler) {
      checkKey(channel, 'channel');
      checkHandler(handler);
      if (closed) throw closedError('postgres');
      const name = notifyChannel(schema, table, channel);
      let set = handlers.get(name);
      const fresh = set === undefined;
      if (!set) {
        set = new Set();
        handlers.set(name, set);
      }
      set.add(handler);
      try {
        const client = await connectListener();
        // A listener opened before this channel was registered does not LISTEN on it yet.
        if (fresh) await client.query(`LISTEN "${name}"`);
      } catch (err) {
        set.delete(handler);
        if (set.size === 0) handlers.delete(name);
        if (closed) throw closedError('postgres');
        throw postgresError(err, 'subscribe');
      }
      let active = true;
      return async () => {
        if (!active) return;
        active = false;
        const current = handlers.get(name);
        if (!current) return;
        current.delete(handler);
        if (current.size > 0) return;
        handlers.delete(name);
        await listener?.query(`UNLISTEN "${name}"`).catch(() => {});
        if (handlers.size === 0) dropListener();
      };
    },
    async ping() {
      const start = performance.now();
      await query('ping', 'SELECT 1', []);
      return performance.now() - start;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      handlers.clear();
      dropListener();
      await connecting?.catch(() => {});
      if (owned) await pool.end().catch(() => {});
      else pool.off('error', onPoolError);
    },
    /** The database server's clock (`now()`), in epoch ms. */
    async time() {
      const { rows } = await query<{ t: number }>(
        'time',
        'SELECT (extract(epoch from clock_timestamp()) * 1000)::float8 AS t',
        [],
      );
      return Math.round(Number(rows[0]?.t));
    },
  };
}
