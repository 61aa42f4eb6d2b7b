/**
 * The driver objects an application may hand to a store (`createSqliteStore({ database })`,
 * `createPostgresStore({ pool })`), typed structurally: keyward's published types then name no
 * `better-sqlite3` or `pg` type, so an application type-checks (also with `skipLibCheck: false`)
 * without `@types/better-sqlite3` or `@types/pg`. A `Database` of better-sqlite3 and a `pg.Pool`
 * satisfy these interfaces (`driver-handles.test-d.ts`); the stores use them as those objects.
 */

/** An open better-sqlite3 `Database` (what {@link SqliteStoreOptions.database} takes). */
export interface SqliteDatabaseHandle {
  /** Whether the database is open. */
  readonly open: boolean;
  /** The database file the handle was opened on. */
  readonly name: string;
  /** Compiles one SQL statement. */
  prepare(source: string): unknown;
  /** Runs SQL text (several statements). */
  exec(source: string): unknown;
  /** Runs a pragma. */
  pragma(source: string, options?: { simple?: boolean }): unknown;
}

/** A `pg.Pool` of node-postgres (what {@link PostgresStoreOptions.pool} takes). */
export interface PostgresPoolHandle {
  /** Checks a client out of the pool. */
  connect(): Promise<unknown>;
  /** Runs one query on a pooled client. */
  query(text: string, values?: unknown[]): Promise<unknown>;
  /** Listens for errors of idle clients. */
  on(event: 'error', listener: (err: Error) => void): unknown;
  /** Stops listening. */
  off(event: 'error', listener: (err: Error) => void): unknown;
  /** Ends the pool. */
  end(): Promise<void>;
}
