import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { describeStoreContract } from '../../../testing/src/store-contract.js';
import { createSqliteStore } from './sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'keyward-sqlite-'));
afterAll(() => {
  counting?.db.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Opens a database whose statements count what they read: one per statement run plus one per row
 * returned, and the whole table for a statement whose query plan on `keyward_kv` is not a point
 * lookup, a collection range or a bounded key range (it may read every row, whatever it returns).
 */
function countingDatabase(path: string): { db: Database.Database; reads: () => number } {
  const db = new Database(path, { timeout: 5000 });
  db.pragma('journal_mode = WAL');
  let reads = 0;
  const prepare = db.prepare.bind(db);
  const scansTable = new Map<string, boolean>();
  const planOf = (source: string, args: unknown[]): boolean => {
    let scans = scansTable.get(source);
    if (scans === undefined) {
      const plan = prepare(`EXPLAIN QUERY PLAN ${source}`).all(...args) as Array<{ detail: string }>;
      // Only a point lookup, a collection range or a range bounded on both sides reads a few rows;
      // any other plan (a table scan, a search by namespace alone or open-ended) may read them all.
      scans = plan.some(
        (row) =>
          /\bkeyward_kv\b/.test(row.detail) &&
          !/^SEARCH keyward_kv USING (PRIMARY KEY|INDEX \w+) \(ns=\? AND (key=\?|collection=\?|key>\? AND key<\?)/.test(
            row.detail,
          ),
      );
      scansTable.set(source, scans);
    }
    return scans;
  };
  let rowsOfTable: Database.Statement | undefined;
  db.prepare = ((source: string) => {
    const statement = prepare(source);
    if (!statement.reader || !/\bkeyward_kv\b/.test(source)) return statement;
    const all = statement.all.bind(statement);
    const get = statement.get.bind(statement);
    const count = (args: unknown[], returned: number) => {
      reads += 1 + returned;
      if (!planOf(source, args)) return;
      rowsOfTable ??= prepare('SELECT COUNT(*) AS n FROM keyward_kv');
      reads += (rowsOfTable.get() as { n: number }).n;
    };
    statement.all = (...args: unknown[]) => {
      const rows = all(...args);
      count(args, rows.length);
      return rows;
    };
    statement.get = (...args: unknown[]) => {
      const row = get(...args);
      count(args, row === undefined ? 0 : 1);
      return row;
    };
    return statement;
  }) as typeof db.prepare;
  return { db, reads: () => reads };
}

let t = 1_700_000_000_000;
let file = 0;
let current = '';
let counting: ReturnType<typeof countingDatabase> | undefined;
let lastReads = 0;
describeStoreContract('sqlite', {
  async make() {
    current = join(dir, `contract-${++file}.db`);
    counting?.db.close();
    counting = countingDatabase(current);
    lastReads = 0;
    return createSqliteStore({ path: current, database: counting.db, now: () => t, pollIntervalMs: 10 });
  },
  async touched() {
    const total = counting?.reads() ?? 0;
    const delta = total - lastReads;
    lastReads = total;
    return delta;
  },
  async fill(store, entries) {
    // One transaction: the store's statements run inside it.
    const db = counting?.db;
    if (!db) throw new Error('no database');
    db.exec('BEGIN');
    try {
      await Promise.all(entries.map(([key, value]) => store.set(key, value)));
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
  },
  async makePeer() {
    return createSqliteStore({ path: current, now: () => t, pollIntervalMs: 10 });
  },
  advance(ms) {
    t += ms;
  },
});

const run = promisify(execFile);
const child = join(import.meta.dirname, '__fixtures__', 'sqlite-increment-child.ts');
const tsx = join(import.meta.dirname, '..', '..', '..', '..', 'node_modules', '.bin', 'tsx');

describe('sqlite store', () => {
  it('loses no increment when two processes race on one file', async () => {
    const path = join(dir, 'race.db');
    const local = createSqliteStore({ path });
    await local.set('ready', '1');
    const runs = await Promise.all([run(tsx, [child, path, '400']), run(tsx, [child, path, '400'])]);
    const results = runs.map((r) => JSON.parse(r.stdout) as { seen: number[]; lockToken: number });
    const all = results.flatMap((r) => r.seen);
    expect(await local.get('shared-counter')).toBe('800');
    // Every value handed out once: no two processes read the same counter state.
    expect(new Set(all).size).toBe(800);
    expect(results.map((r) => r.lockToken).sort()).toEqual([1, 2]);
    await local.close();
  }, 60_000);

  it('keeps namespaces in one file apart', async () => {
    const path = join(dir, 'ns.db');
    const a = createSqliteStore({ path, namespace: 'a' });
    const b = createSqliteStore({ path, namespace: 'b' });
    await a.set('k', 'from-a');
    expect(await b.get('k')).toBeNull();
    expect((await b.scan('')).entries).toEqual([]);
    await Promise.all([a.close(), b.close()]);
  });

  it('uses a passed-in database and never closes it', async () => {
    const db = new Database(':memory:');
    const store = createSqliteStore({ path: 'unused', database: db });
    await store.set('k', 'v');
    await store.close();
    expect(db.open).toBe(true);
    expect(db.prepare('SELECT value FROM keyward_kv WHERE key = ?').get('k')).toEqual({ value: 'v' });
    db.close();
  });

  it('reports a closed passed-in database as store_unavailable', async () => {
    const db = new Database(':memory:');
    const store = createSqliteStore({ path: ':memory:', database: db });
    db.close();
    await expect(store.get('k')).rejects.toMatchObject({ code: 'store_unavailable' });
  });

  it('fails at construction with store_unavailable when the file cannot be opened', () => {
    const notADir = join(dir, 'a-file');
    writeFileSync(notADir, 'x');
    expect(() => createSqliteStore({ path: join(notADir, 'x.db') })).toThrow(
      expect.objectContaining({ code: 'store_unavailable' }),
    );
  });

  it('rejects bad options with config_invalid', () => {
    expect(() => createSqliteStore({ path: '' })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    );
    expect(() => createSqliteStore({ path: ':memory:', pollIntervalMs: 0 })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    );
  });

  it('prunes old events but still delivers new ones', async () => {
    let now = 0;
    const path = join(dir, 'events.db');
    const store = createSqliteStore({ path, now: () => now, pollIntervalMs: 5, eventRetentionMs: 1000 });
    for (let i = 0; i < 5; i++) await store.publish('c', `old-${i}`);
    now = 10_000;
    await store.publish('c', 'new');
    const db = new Database(path, { readonly: true });
    const left = db.prepare('SELECT message FROM keyward_events').all();
    db.close();
    expect(left).toEqual([{ message: 'new' }]);
    await store.close();
  });
});

describe('sqlite store collections', () => {
  it('migrates a version-0 file in place: members get their collection, nothing is lost', async () => {
    const path = join(dir, 'v0.db');
    const old = new Database(path);
    // The schema as shipped before collections (user_version 0).
    old.exec(`CREATE TABLE keyward_kv (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires_at INTEGER,
      PRIMARY KEY (ns, key)) WITHOUT ROWID;`);
    const insert = old.prepare('INSERT INTO keyward_kv (ns, key, value, expires_at) VALUES (?, ?, ?, NULL)');
    for (const [key, value] of [
      ['apikey-owner:b3du/kw1', '1'],
      ['apikey-owner:b3du/kw2', '2'],
      ['a/b/c', 'nested'],
      ['keyring', 'doc'],
    ])
      insert.run('keyward', key, value);
    expect(old.pragma('user_version', { simple: true })).toBe(0);
    old.close();

    const store = createSqliteStore({ path });
    expect((await store.list('apikey-owner:b3du/')).entries).toEqual([
      { key: 'apikey-owner:b3du/kw1', value: '1' },
      { key: 'apikey-owner:b3du/kw2', value: '2' },
    ]);
    expect((await store.list('a/b/')).entries).toEqual([{ key: 'a/b/c', value: 'nested' }]);
    expect((await store.list('a/')).entries).toEqual([]);
    expect(await store.get('keyring')).toBe('doc');
    await store.set('apikey-owner:b3du/kw3', '3');
    expect((await store.list('apikey-owner:b3du/')).entries).toHaveLength(3);
    await store.close();

    const check = new Database(path, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(1);
    expect(check.prepare('SELECT key, collection FROM keyward_kv ORDER BY key').all()).toEqual([
      { key: 'a/b/c', collection: 'a/b/' },
      { key: 'apikey-owner:b3du/kw1', collection: 'apikey-owner:b3du/' },
      { key: 'apikey-owner:b3du/kw2', collection: 'apikey-owner:b3du/' },
      { key: 'apikey-owner:b3du/kw3', collection: 'apikey-owner:b3du/' },
      { key: 'keyring', collection: null },
    ]);
    check.close();
    // Opening again is a no-op.
    const again = createSqliteStore({ path });
    expect((await again.list('apikey-owner:b3du/')).entries).toHaveLength(3);
    await again.close();
  });
});

describe('sqlite store on a fresh deployment', () => {
  // Regression: with KEYWARD_MASTER_KEY set and no KEYWARD_DIR yet, start-up failed.
  it('creates the missing data folder', async () => {
    const { mkdtempSync, existsSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const path = join(mkdtempSync(join(tmpdir(), 'kw-fresh-')), 'nested', 'dir', 'keyward.db');
    const store = createSqliteStore({ path });
    await store.set('a', 'b');
    expect(existsSync(path)).toBe(true);
    await store.close();
  });
});
