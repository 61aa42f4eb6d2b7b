import { KeywardError } from '../errors.js';

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
