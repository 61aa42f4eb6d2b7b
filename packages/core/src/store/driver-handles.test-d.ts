// Type tests: the real driver objects satisfy keyward's structural handles, and the published
// option types accept them.
import type Database from 'better-sqlite3';
import type pg from 'pg';
import type { PostgresPoolHandle, SqliteDatabaseHandle } from './driver-handles.js';
import type { PostgresStoreOptions } from './postgres.js';
import type { SqliteStoreOptions } from './sqlite.js';

declare const database: Database.Database;
declare const pool: pg.Pool;

export const sqliteHandle: SqliteDatabaseHandle = database;
export const postgresHandle: PostgresPoolHandle = pool;
export const sqliteOptions: SqliteStoreOptions = { path: ':memory:', database };
export const postgresOptions: PostgresStoreOptions = { pool };

// Something else is refused.
// @ts-expect-error not a database handle
export const notADatabase: SqliteStoreOptions = { path: ':memory:', database: {} };
// @ts-expect-error not a pool
export const notAPool: PostgresStoreOptions = { pool: { query: () => 1 } };
