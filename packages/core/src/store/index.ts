export type { PostgresPoolHandle, SqliteDatabaseHandle } from './driver-handles.js';
export { createMemoryStore, type MemoryStoreOptions } from './memory.js';
export { createPostgresStore, POSTGRES_SCHEMA_VERSION, type PostgresStoreOptions } from './postgres.js';
export { createRedisStore, type RedisStoreOptions } from './redis.js';
export { createSqliteStore, type SqliteStoreOptions } from './sqlite.js';
export type {
  Store,
  StoreEntry,
  StoreListOptions,
  StoreListPage,
  StoreLock,
  StoreMessageHandler,
  StoreSetOptions,
} from './types.js';
