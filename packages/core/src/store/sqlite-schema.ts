import type Database from 'better-sqlite3';
import { KeywardError } from '../errors.js';

/**
 * Schema version of a database file (`PRAGMA user_version`): 1 added `keyward_kv.collection` (the
 * collection of a member key, everything up to its last `/`; NULL for a standalone key) and its
 * index, so `list` is an index range read.
 */
export const SQLITE_SCHEMA_VERSION = 1;

/**
 * Tables shared by every namespace in one database file. `locks` rows are kept after release so
 * the fencing token of a lock name only ever increases. `events` uses AUTOINCREMENT so an id is
 * never reused after pruning, which lets pollers resume from the last id they saw.
 */
export const SQLITE_SCHEMA = `
CREATE TABLE IF NOT EXISTS keyward_kv (
  ns TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  expires_at INTEGER,
  collection TEXT,
  PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS keyward_kv_expiry ON keyward_kv (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS keyward_locks (
  ns TEXT NOT NULL,
  name TEXT NOT NULL,
  holder TEXT,
  expires_at INTEGER NOT NULL,
  token INTEGER NOT NULL,
  PRIMARY KEY (ns, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keyward_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ns TEXT NOT NULL,
  channel TEXT NOT NULL,
  message TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS keyward_events_created ON keyward_events (created_at);
`;

/** Indexes created once the tables have their current columns (after {@link migrateSqliteSchema}). */
const SQLITE_INDEXES = `
CREATE INDEX IF NOT EXISTS keyward_kv_collection ON keyward_kv (ns, collection, key) WHERE collection IS NOT NULL;
`;

/** The collection of a store key (up to and including its last `/`), or `null` for a standalone key. */
export function collectionColumn(key: string): string | null {
  const slash = key.lastIndexOf('/');
  return slash === -1 ? null : key.slice(0, slash + 1);
}

/**
 * Creates the tables, or brings an existing file up to {@link SQLITE_SCHEMA_VERSION} in place,
 * in one `BEGIN IMMEDIATE` transaction (several processes may open the file at once; the second
 * sees the version the first wrote). Version 0 → 1 adds and fills `keyward_kv.collection`.
 */
export function migrateSqliteSchema(db: Database.Database): void {
  db.transaction(() => {
    db.exec(SQLITE_SCHEMA);
    const version = Number(db.pragma('user_version', { simple: true }));
    if (version < 1) {
      const columns = db
        .prepare<[], { name: string }>("SELECT name FROM pragma_table_info('keyward_kv')")
        .all();
      if (!columns.some((c) => c.name === 'collection'))
        db.exec('ALTER TABLE keyward_kv ADD COLUMN collection TEXT');
      const rows = db
        .prepare<[], { ns: string; key: string }>("SELECT ns, key FROM keyward_kv WHERE instr(key, '/') > 0")
        .all();
      const fill = db.prepare<{ ns: string; key: string; collection: string | null }>(
        'UPDATE keyward_kv SET collection = @collection WHERE ns = @ns AND key = @key',
      );
      for (const row of rows) fill.run({ ...row, collection: collectionColumn(row.key) });
    }
    if (version < SQLITE_SCHEMA_VERSION) db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
    db.exec(SQLITE_INDEXES);
  }).immediate();
}

const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|CANTOPEN|NOTADB|CORRUPT)/;

/**
 * Maps a better-sqlite3 failure to a keyward error: lock contention past `busy_timeout`, a file
 * that cannot be opened or a closed handle is `store_unavailable`; anything else is `store_error`.
 */
export function sqliteError(err: unknown, operation: string): KeywardError {
  if (err instanceof KeywardError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const closedHandle = err instanceof TypeError && /database connection is not open/i.test(err.message);
  const unavailable =
    operation === 'open' || closedHandle || (typeof code === 'string' && UNAVAILABLE.test(code));
  return new KeywardError(
    unavailable ? 'store_unavailable' : 'store_error',
    `sqlite store ${unavailable ? 'is unavailable' : 'failed'} during ${operation}`,
    {
      cause: err,
      details: { driver: 'sqlite', operation, ...(typeof code === 'string' ? { sqliteCode: code } : {}) },
    },
  );
}
