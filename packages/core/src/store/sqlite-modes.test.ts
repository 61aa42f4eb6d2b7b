import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createSqliteStore } from './sqlite.js';
import type { Store } from './types.js';

const root = mkdtempSync(join(tmpdir(), 'kw-sqlite-modes-'));
const stores: Store[] = [];
const umask = process.umask();
afterEach(async () => {
  process.umask(umask);
  await Promise.all(stores.splice(0).map((s) => s.close()));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o777;
let n = 0;

/** A folder that existed before keyward started (a mounted volume), world-readable. */
function existingFolder(): string {
  const dir = join(root, `volume-${n++}`);
  mkdirSync(dir);
  chmodSync(dir, 0o755);
  return dir;
}

describe('sqlite file modes', () => {
  it.each([
    ['0o022', 0o022],
    ['0o000', 0o000],
    ['0o277', 0o277],
  ])(
    'regression #11: keyward.db, -wal and -shm are created 0600 in an existing 0755 folder (umask %s)',
    async (_label, mask) => {
      const dir = existingFolder();
      const path = join(dir, 'keyward.db');
      process.umask(mask);
      const store = createSqliteStore({ path });
      stores.push(store);
      await store.set('k', 'v'); // a write, so the WAL has content
      expect(await store.get('k')).toBe('v');
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        expect(existsSync(file), file).toBe(true);
        expect(mode(file).toString(8), file).toBe('600');
      }
      expect(mode(dir).toString(8)).toBe('755'); // the folder is the operator's: left alone
    },
  );

  it('regression #11: a database file an older version created 0644 is tightened to 0600 on open', async () => {
    const dir = existingFolder();
    const path = join(dir, 'keyward.db');
    const first = createSqliteStore({ path });
    await first.set('k', 'v');
    await first.close();
    for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o644);
    const store = createSqliteStore({ path });
    stores.push(store);
    expect(await store.get('k')).toBe('v');
    for (const file of [path, `${path}-wal`, `${path}-shm`]) expect(mode(file).toString(8), file).toBe('600');
  });

  it('opens a pre-created empty file as a new database', async () => {
    const path = join(existingFolder(), 'keyward.db');
    writeFileSync(path, '');
    const store = createSqliteStore({ path });
    stores.push(store);
    await store.set('a', 'b');
    expect(await store.get('a')).toBe('b');
    expect(mode(path).toString(8)).toBe('600');
  });
});
