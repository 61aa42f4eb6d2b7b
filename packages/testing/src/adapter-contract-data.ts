import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteStore, MasterKey, SECRET_PREFIX } from '@keyward/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterContractTarget, RunningApp } from './adapter-contract.js';

const USERS = 'alice:alice-password:read,admin:admin-password:read admin';

/** The store key of a secret, as `secrets/record.ts` builds it. */
const secretStoreKey = (owner: string, name: string) =>
  `${SECRET_PREFIX}${encodeURIComponent(owner)}/${encodeURIComponent(name)}`;

async function send(
  base: string,
  method: string,
  path: string,
  o: { token?: string; json?: unknown } = {},
): Promise<{ status: number; headers: Headers; text: string; json: Record<string, unknown> | undefined }> {
  const headers: Record<string, string> = {};
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, {
    method,
    headers,
    ...(o.json !== undefined ? { body: JSON.stringify(o.json) } : {}),
  });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/**
 * Data at rest through a real server (keyward issue #11): a secret record copied in the store to
 * another subject's key is refused (500 `secret_context_mismatch`, never the plaintext, never a
 * 401); the SQLite files are owner-only in a pre-existing world-readable data folder; a start
 * without the master key that sealed the stored keyring fails with one line and writes no
 * `master.key`. Called by {@link describeAdapterContract} with the same target.
 *
 * @example
 * ```ts
 * describeDataAtRestContract('express', { start: (env) => startExampleProcess('examples/express', env) })
 * ```
 */
export function describeDataAtRestContract(name: string, target: AdapterContractTarget): void {
  describe(`adapter contract, data at rest: ${name}`, () => {
    const masterKey = MasterKey.generate();
    // A data folder that existed before keyward (a mounted volume), world-readable.
    const dir = mkdtempSync(join(tmpdir(), `keyward-data-${name}-`));
    chmodSync(dir, 0o755);
    const env = { PORT: '0', HOST: '127.0.0.1', KEYWARD_DIR: dir, DEMO_USERS: USERS };
    let app: RunningApp | undefined;
    beforeAll(async () => {
      app = await target.start({ ...env, KEYWARD_MASTER_KEY: masterKey.exportText() });
    });
    afterAll(async () => {
      await app?.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const login = async (user: 'alice' | 'admin') => {
      const r = await send(app!.url, 'POST', '/auth/login', {
        json: { username: user, password: `${user}-password` },
      });
      expect(r.status, r.text).toBe(200);
      return r.json!.access_token as string;
    };

    it("regression #11: alice's secret record copied in the store to admin's key answers GET /secrets/:name with 500 secret_context_mismatch, no plaintext", async () => {
      const alice = await login('alice');
      const admin = await login('admin');
      const plaintext = 'alice-only-plaintext-7f3a';
      const put = await send(app!.url, 'PUT', '/secrets/github-token', {
        token: alice,
        json: { value: plaintext },
      });
      expect(put.status, put.text).toBe(204);
      // The attacker writes the store directly (same SQLite file the app uses).
      const store = createSqliteStore({ path: join(dir, 'keyward.db') });
      try {
        const record = await store.get(secretStoreKey('alice', 'github-token'));
        expect(record).not.toBeNull();
        await store.set(secretStoreKey('admin', 'github-token'), record!);
      } finally {
        await store.close();
      }
      const got = await send(app!.url, 'GET', '/secrets/github-token', { token: admin });
      expect(got.status, got.text).toBe(500);
      expect(got.json?.error).toBe('secret_context_mismatch');
      expect(typeof got.json?.message).toBe('string');
      expect(got.text).not.toContain(plaintext);
      expect(got.headers.get('www-authenticate')).toBeNull();
      // alice still reads her own secret
      const own = await send(app!.url, 'GET', '/secrets/github-token', { token: alice });
      expect(own.json).toEqual({ name: 'github-token', value: plaintext });
    });

    it('regression #11: keyward.db, -wal and -shm are owner-only (0600) in a pre-existing 0755 data folder', async () => {
      for (const file of ['keyward.db', 'keyward.db-wal', 'keyward.db-shm']) {
        const path = join(dir, file);
        expect(existsSync(path), file).toBe(true);
        expect((statSync(path).mode & 0o777).toString(8), file).toBe('600');
      }
    });

    it('regression #11: started without the master key that sealed the stored keyring, it fails with one line and writes no master.key', async () => {
      const before = readdirSync(dir).sort();
      const started = await target.start(env).then(
        async (running) => {
          await running.stop();
          return undefined;
        },
        (err: unknown) => err as Error,
      );
      expect(started, 'the app started without its master key').toBeInstanceOf(Error);
      const lines = started!.message.split('\n').filter((line) => line.includes('master_key_mismatch'));
      expect(lines, started!.message).toHaveLength(1);
      expect(lines[0]).toMatch(/^keyward: .*sealed by master key mk_\w+.*\[master_key_mismatch\]$/);
      expect(started!.message).not.toContain(masterKey.exportText());
      expect(existsSync(join(dir, 'master.key'))).toBe(false);
      expect(readdirSync(dir).sort()).toEqual(before);
    });
  });
}
