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
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let t = 1_700_000_000_000;
let file = 0;
let current = '';
describeStoreContract('sqlite', {
  async make() {
    current = join(dir, `contract-${++file}.db`);
    return createSqliteStore({ path: current, now: () => t, pollIntervalMs: 10 });
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
    expect((await b.list('')).entries).toEqual([]);
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
