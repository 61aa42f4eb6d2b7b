/**
 * The store drivers of the multi-process sync suite (sync-suite.ts) and the sync benchmark: for
 * each, the env of an app process on a fresh namespace, a store on that namespace, cleanup, and
 * the driver's way to cut one instance's change feed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type TestCluster, type TestSentinels, withClient } from '../../../testing/src/redis-ha.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { createRedisStore } from '../../src/store/redis.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { FeedCut, SyncDriver } from './sync-suite.js';

const hosts = (seeds: string) =>
  seeds.split(',').map((h) => ({
    host: h.slice(0, h.lastIndexOf(':')),
    port: Number(h.slice(h.lastIndexOf(':') + 1)),
  }));

/**
 * Kills the pub/sub connections whose CLIENT SETNAME contains `name` on the servers at `ports`
 * (a cluster's subscriber may sit on any node); resolves how many it killed.
 */
export async function killPubsub(ports: number[], name: string): Promise<number> {
  let killed = 0;
  for (const port of ports) {
    const ids = await withClient(port, async (c) => {
      const list = String(await c.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
      const found = list
        .split('\n')
        .filter((l) => (/ name=(\S*)/.exec(l)?.[1] ?? '').includes(name))
        .map((l) => /id=(\d+)/.exec(l)?.[1])
        .filter((id): id is string => id !== undefined);
      for (const id of found) await c.call('CLIENT', 'KILL', 'ID', id);
      return found.length;
    }).catch(() => 0);
    killed += ids;
  }
  return killed;
}

/** The Redis feed cut: the instance names its connections and does not resubscribe (ioredis `autoResubscribe`). */
function redisFeed(ports: () => Promise<number[]>): FeedCut {
  return {
    env: (name) => ({ KW_NO_RESUBSCRIBE: '1', KW_CONNECTION_NAME: name }),
    drop: async (name) => killPubsub(await ports(), name),
  };
}

/** One standalone redis-server at `url`, a fresh key prefix (under `base`) per namespace. */
export function redisDriver(url: string, base = `kwsync:${randomBytes(3).toString('hex')}:`): SyncDriver {
  const prefixes: string[] = [];
  return {
    name: 'Redis standalone',
    namespace() {
      const prefix = `${base}${prefixes.length + 1}:`;
      prefixes.push(prefix);
      return { REDIS_URL: url, KW_PREFIX: prefix };
    },
    openStore: (env) => createRedisStore({ url: env.REDIS_URL!, prefix: env.KW_PREFIX! }),
    async cleanup() {
      // Imported here: testing/src/redis.js loads vitest, and the benchmark uses these drivers too.
      const { dropRedisPrefix } = await import('../../../testing/src/redis.js');
      for (const prefix of prefixes.splice(0)) await dropRedisPrefix(url, prefix);
    },
    feed: redisFeed(async () => [Number(new URL(url).port || 6379)]),
  };
}

/**
 * A Redis Cluster the caller started (`startCluster`); a fresh prefix (`<prefix><n>:`; a `{tag}` in
 * it puts every key on one slot) per namespace. The feed cut
 * kills the subscriber connection wherever it sits; ioredis' cluster subscriber then picks a node
 * and subscribes again by itself (it has no `autoResubscribe: false`), so the instance converges
 * over pub/sub or its poller, whichever is first.
 */
export function clusterDriver(cluster: () => TestCluster, prefix = 'kwsync'): SyncDriver {
  let n = 0;
  return {
    name: 'Redis Cluster',
    namespace: () => ({ KW_REDIS_CLUSTER: cluster().seeds, KW_PREFIX: `${prefix}${++n}:` }),
    openStore: (env) =>
      createRedisStore({ cluster: { nodes: hosts(env.KW_REDIS_CLUSTER!) }, prefix: env.KW_PREFIX! }),
    feed: redisFeed(async () =>
      cluster()
        .nodes.filter((node) => node.process.exitCode === null && node.process.signalCode === null)
        .map((node) => node.port),
    ),
  };
}

/**
 * A master + replica + three sentinels the caller started (`startSentinels`); a fresh prefix
 * (`<prefix><n>:`) per namespace.
 */
export function sentinelDriver(sentinels: () => TestSentinels, prefix = 'kwsync'): SyncDriver {
  let n = 0;
  return {
    name: 'Redis Sentinel',
    namespace: () => ({
      KW_REDIS_SENTINELS: sentinels().seeds,
      KW_REDIS_SENTINEL_NAME: sentinels().name,
      KW_PREFIX: `${prefix}${++n}:`,
    }),
    openStore: (env) =>
      createRedisStore({
        sentinels: { nodes: hosts(env.KW_REDIS_SENTINELS!), name: env.KW_REDIS_SENTINEL_NAME! },
        prefix: env.KW_PREFIX!,
      }),
    // The pub/sub connection is a duplicate of the command connection: on the master.
    feed: redisFeed(async () => [await sentinels().currentMaster()]),
  };
}

/** A PostgreSQL server at `url`, a fresh schema per namespace; the feed cut terminates the LISTEN backend. */
export function postgresDriver(url: string): SyncDriver {
  const schemas: string[] = [];
  return {
    name: 'PostgreSQL',
    namespace() {
      const schema = `kwsync_${randomBytes(4).toString('hex')}`;
      schemas.push(schema);
      return { KW_DATABASE_URL: url, KW_PG_SCHEMA: schema };
    },
    openStore: (env) =>
      createPostgresStore({ connectionString: env.KW_DATABASE_URL!, schema: env.KW_PG_SCHEMA! }),
    async cleanup() {
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try {
        for (const schema of schemas.splice(0))
          await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await admin.end();
      }
    },
    feed: {
      // The instance's connections carry application_name; KW_NO_RESUBSCRIBE keeps LISTEN down.
      env: (name, namespace) => ({
        KW_DATABASE_URL: `${namespace.KW_DATABASE_URL}?application_name=${name}`,
        KW_NO_RESUBSCRIBE: '1',
      }),
      async drop(name) {
        const admin = new pg.Client({ connectionString: url });
        await admin.connect();
        try {
          const killed = await admin.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1 AND query LIKE 'LISTEN %'`,
            [name],
          );
          return killed.rowCount ?? 0;
        } finally {
          await admin.end();
        }
      },
    },
  };
}

/** A fresh SQLite file per namespace. Announcements go through a polled events table: no feed to cut. */
export function sqliteDriver(): SyncDriver {
  const dir = mkdtempSync(join(tmpdir(), 'kw-sync-sqlite-'));
  let n = 0;
  return {
    name: 'SQLite',
    namespace: () => ({ KW_SQLITE_PATH: join(dir, `keyward-${++n}.db`) }),
    openStore: (env) => createSqliteStore({ path: env.KW_SQLITE_PATH! }),
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
