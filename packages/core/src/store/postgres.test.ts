import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { describeWithPostgres, postgresTestUrl } from '../../../testing/src/postgres.js';
import { describeStoreContract } from '../../../testing/src/store-contract.js';
import { createPostgresStore } from './postgres.js';
import type { Store } from './types.js';

const url = postgresTestUrl() ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const schemas: string[] = [];
const pools: pg.Pool[] = [];
const admin = new pg.Pool({ connectionString: url, max: 2 });
afterAll(async () => {
  for (const schema of schemas.splice(0))
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
  await admin.end();
});

function freshSchema(): string {
  const schema = `kwtest_${randomBytes(4).toString('hex')}`;
  schemas.push(schema);
  return schema;
}

interface PlanNode {
  'Relation Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

/** Rows a plan node (and its children) read from the entries table, as EXPLAIN ANALYZE reports them. */
function rowsRead(node: PlanNode): number {
  let n = 0;
  if (node['Relation Name'] === 'keyward') {
    const loops = node['Actual Loops'] ?? 1;
    n +=
      ((node['Actual Rows'] ?? 0) +
        (node['Rows Removed by Filter'] ?? 0) +
        (node['Rows Removed by Index Recheck'] ?? 0)) *
      loops;
  }
  for (const child of node.Plans ?? []) n += rowsRead(child);
  return n;
}

/**
 * A pool whose queries count what they read from the entries table: one per statement, plus, for a
 * SELECT, every row its plan visited (`EXPLAIN (ANALYZE, FORMAT JSON)` of the same statement: a
 * sequential scan counts the whole table, rows removed by a filter included).
 */
function countingPool(): { pool: pg.Pool; reads: () => number } {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pools.push(pool);
  let reads = 0;
  const query = pool.query.bind(pool) as (text: string, values?: unknown[]) => Promise<pg.QueryResult>;
  (pool as { query: unknown }).query = async (text: string, values?: unknown[]) => {
    if (typeof text === 'string' && /"keyward"(?!_)/.test(text)) {
      reads += 1;
      if (/^\s*SELECT/i.test(text)) {
        const plan = await query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
        const root = (plan.rows[0] as { 'QUERY PLAN': Array<{ Plan: PlanNode }> })['QUERY PLAN'][0];
        if (root) reads += rowsRead(root.Plan);
      }
    }
    return query(text, values);
  };
  return { pool, reads: () => reads };
}

let current = '';
let counting: ReturnType<typeof countingPool> | undefined;
let lastReads = 0;

describeWithPostgres('postgres store', () => {
  describeStoreContract('postgres', {
    async make() {
      current = freshSchema();
      counting = countingPool();
      lastReads = 0;
      return createPostgresStore({ pool: counting.pool, schema: current });
    },
    async makePeer() {
      return createPostgresStore({ connectionString: url, schema: current });
    },
    async touched() {
      const total = counting?.reads() ?? 0;
      const delta = total - lastReads;
      lastReads = total;
      return delta;
    },
    async fill(store, entries) {
      await store.ping(); // creates the tables
      const keys = entries.map(([k]) => k);
      const values = entries.map(([, v]) => v);
      const collections = keys.map((k) => (k.includes('/') ? k.slice(0, k.lastIndexOf('/') + 1) : null));
      await admin.query(
        `INSERT INTO "${current}"."keyward" (key, value, collection)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[])`,
        [keys, values, collections],
      );
      await admin.query(`ANALYZE "${current}"."keyward"`); // what autovacuum does on a live table
    },
    async cleanup() {
      await Promise.all(pools.splice(0).map((p) => p.end()));
      await admin.query(`DROP SCHEMA IF EXISTS "${current}" CASCADE`);
    },
  });

  it('records its schema version once, however many stores open the tables at once', async () => {
    const schema = freshSchema();
    const stores = Array.from({ length: 4 }, () => createPostgresStore({ connectionString: url, schema }));
    await Promise.all(stores.map((s, i) => s.set(`k${i}`, 'v')));
    const { rows } = await admin.query(`SELECT version FROM "${schema}"."keyward_migrations"`);
    expect(rows).toEqual([{ version: 1 }]);
    expect(await stores[3]?.get('k0')).toBe('v');
    await Promise.all(stores.map((s) => s.close()));
  });

  it('opens an up-to-date database as a role that may only read and write the tables', async () => {
    const schema = freshSchema();
    const role = `${schema}_rw`;
    const owner = createPostgresStore({ connectionString: url, schema });
    await owner.set('k', 'v'); // migrates as the superuser
    await owner.close();
    await admin.query(`CREATE ROLE "${role}" LOGIN`);
    try {
      await admin.query(`GRANT USAGE ON SCHEMA "${schema}" TO "${role}"`);
      await admin.query(
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "${schema}" TO "${role}"`,
      );
      const u = new URL(url);
      u.username = role;
      const store = createPostgresStore({ connectionString: u.toString(), schema });
      try {
        expect(await store.get('k')).toBe('v');
        await store.set('k', 'w');
        expect(await store.increment('n')).toBe(1);
        expect(await store.acquireLock('l', 10_000)).not.toBeNull();
      } finally {
        await store.close();
      }
    } finally {
      await admin.query(`DROP OWNED BY "${role}"`);
      await admin.query(`DROP ROLE "${role}"`);
    }
  });

  it('keeps two tables in one schema apart, pub/sub included', async () => {
    const schema = freshSchema();
    const a = createPostgresStore({ connectionString: url, schema, table: 'kw_a' });
    const b = createPostgresStore({ connectionString: url, schema, table: 'kw_b' });
    await a.set('k', 'from-a');
    expect(await b.get('k')).toBeNull();
    expect((await b.scan('')).entries).toEqual([]);
    const heardA: string[] = [];
    const heardB: string[] = [];
    await a.subscribe('c', (m) => heardA.push(m));
    await b.subscribe('c', (m) => heardB.push(m));
    await b.publish('c', 'for-b');
    await a.publish('c', 'for-a');
    for (let i = 0; i < 300 && (heardA.length < 1 || heardB.length < 1); i++) await delay(10);
    expect(heardA).toEqual(['for-a']);
    expect(heardB).toEqual(['for-b']);
    await Promise.all([a.close(), b.close()]);
  });

  it('resubscribes by itself after its LISTEN connection is killed', async () => {
    const schema = freshSchema();
    const store = createPostgresStore({ connectionString: url, schema });
    const got: string[] = [];
    await store.subscribe('keys', (m) => got.push(m));
    const killed = await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE pid <> pg_backend_pid() AND query LIKE 'LISTEN "keyward_%'`,
    );
    expect(killed.rowCount).toBeGreaterThan(0);
    // Publish until the new connection hears it (messages sent while it was down are lost).
    for (let i = 0; i < 300 && got.length === 0; i++) {
      await store.publish('keys', `m${i}`);
      await delay(20);
    }
    expect(got.length).toBeGreaterThan(0);
    await store.close();
  });

  it('fails with store_unavailable, not a hang or store_error, when the server is unreachable', async () => {
    const store: Store = createPostgresStore({
      connectionString: 'postgres://postgres@127.0.0.1:7299/postgres',
      connectTimeoutMs: 500,
    });
    await expect(store.set('k', 'v')).rejects.toMatchObject({
      name: 'KeywardError',
      code: 'store_unavailable',
    });
    await expect(store.get('k')).rejects.toMatchObject({ code: 'store_unavailable' });
    await expect(store.subscribe('c', () => {})).rejects.toMatchObject({ code: 'store_unavailable' });
    await store.close();
  });

  it('fails a write blocked past queryTimeoutMs with store_unavailable, and the write did not happen', async () => {
    const schema = freshSchema();
    const store = createPostgresStore({ connectionString: url, schema, queryTimeoutMs: 300 });
    await store.set('k', 'before');
    const blocker = await admin.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT 1 FROM "${schema}"."keyward" WHERE key = 'k' FOR UPDATE`);
      await expect(store.set('k', 'after')).rejects.toMatchObject({ code: 'store_unavailable' });
      await blocker.query('ROLLBACK');
    } finally {
      blocker.release();
    }
    expect(await store.get('k')).toBe('before');
    await store.close();
  });

  it('refuses a bad schema or table name with config_invalid', () => {
    expect(() => createPostgresStore({ connectionString: url, schema: 'a"; DROP' })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    );
    expect(() => createPostgresStore({ connectionString: url, table: 'Upper' })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    );
    expect(() => createPostgresStore({})).toThrow(expect.objectContaining({ code: 'config_invalid' }));
  });
});
