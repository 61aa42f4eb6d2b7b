/**
 * Store data loss under running instances (keyward issue #10, point 4): FLUSHALL on Redis, and the
 * keyring rows deleted from a shared SQLite file, with several app processes running. No instance
 * may create a second keyring; every valid token keeps verifying everywhere; readiness fails until
 * the held keyring is back; revocations made before the loss still hold.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { describeWithRedis, redisTestUrl, uniquePrefix } from '../../../testing/src/redis.js';
import type { HealthReport } from '../../src/health/types.js';
import { KEYRING_KEY, type KeyringDocument } from '../../src/keys/keyring-store.js';
import { MasterKey } from '../../src/keys/master-key.js';
import { type App, codeOf, eventually, startApp } from './harness.js';

/** The Redis key of the keyring document: member `doc` of collection `keyring/`, hash-tagged by it. */
function redisKeyringKey(prefix: string): string {
  const at = KEYRING_KEY.lastIndexOf('/') + 1;
  return `${prefix}k:{${KEYRING_KEY.slice(0, at)}}${KEYRING_KEY.slice(at)}`;
}

const url = redisTestUrl() ?? 'redis://127.0.0.1:6379';
const MASTER = MasterKey.generate().exportText();
const HOUR = 3_600_000;
const apps: App[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function start(count: number, env: Record<string, string>): Promise<App[]> {
  const make = () => startApp({ KW_MASTER: MASTER, REDIS_URL: url, ...env });
  // One first, so the keyring is bootstrapped once; then the others.
  const first = await make();
  apps.push(first);
  const rest = await Promise.all(Array.from({ length: count - 1 }, make));
  apps.push(...rest);
  return [first, ...rest];
}

interface Issued {
  token: string;
  by: number;
}

/** Tokens from every instance, plus one revoked by jti and one of a subject logged out everywhere. */
async function issue(instances: App[]) {
  const valid: Issued[] = [];
  for (const [by, app] of instances.entries())
    for (let i = 0; i < 3; i++)
      valid.push({ token: await app.call<string>('sign', { sub: `u${by}-${i}` }), by });
  const revokedJti = await instances[0]!.call<string>('sign', { sub: 'r', jti: 'revoked-before-loss' });
  await instances[0]!.call('revokeToken', { jti: 'revoked-before-loss', until: Date.now() + HOUR });
  const loggedOut = await instances[1]!.call<string>('sign', { sub: 'logged-out' });
  await instances[1]!.call('revokeSubject', { sub: 'logged-out' });
  // Every instance holds both revocations before the loss.
  for (const app of instances) {
    await eventually(
      async () => (await codeOf(app.call('verify', { token: revokedJti }))) === 'token_revoked',
    );
    await eventually(
      async () => (await codeOf(app.call('verify', { token: loggedOut }))) === 'token_revoked',
    );
  }
  return { valid, revoked: [revokedJti, loggedOut] };
}

/** Verifies every valid token on every instance; resolves how many were rejected. */
async function rejections(instances: App[], valid: Issued[]): Promise<number> {
  let rejected = 0;
  for (const app of instances)
    for (const { token } of valid)
      if ((await codeOf(app.call('verify', { token }))) !== undefined) rejected += 1;
  return rejected;
}

const lineageOf = (report: HealthReport) => report.checks['keyring:lineage']?.[0];

/**
 * A scheduler tick's outcome. `busy` means the process's own background tick holds the scheduler
 * right now (a race with the timer, seen on a slow machine): wait for it and ask again.
 */
async function settledTick(app: { call<T = unknown>(method: string): Promise<T> }): Promise<unknown> {
  for (let attempt = 0; ; attempt++) {
    const outcome = await app.call<{ status: string }>('tick');
    if (outcome.status !== 'busy' || attempt === 50) return outcome;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * The shared scenario: `lose()` wipes the store under `instances` (their polls are off: each poll
 * is an explicit `refresh`, so every step is observed), `read()` returns the stored documents.
 */
async function scenario(
  instances: App[],
  lose: () => Promise<void>,
  read: () => Promise<{ documents: number; doc: KeyringDocument | null }>,
  lateEnv: Record<string, string>,
) {
  const { valid, revoked } = await issue(instances);
  const before = (await read()).doc!;
  expect(before.lineage).toBeTruthy();
  expect(await rejections(instances, valid)).toBe(0);

  await lose();
  expect((await read()).documents).toBe(0);
  // Every scheduler runs against the empty store: none creates a keyring.
  for (const app of instances)
    expect(await settledTick(app)).toEqual({ status: 'failed', code: 'keyring_lost' });
  expect((await read()).documents).toBe(0);
  expect(await rejections(instances, valid)).toBe(0);

  // One poll on each, all at once: exactly one re-publishes, the others find it.
  await Promise.all(instances.map((app) => app.call('refresh')));
  const after = await read();
  expect(after.documents).toBe(1);
  expect(after.doc).toMatchObject({ lineage: before.lineage, generation: before.generation });
  expect(after.doc!.keys.map((k) => k.kid)).toEqual(before.keys.map((k) => k.kid));
  const reports = await Promise.all(instances.map((app) => app.call<HealthReport>('health')));
  const failing = reports.filter((r) => r.status === 'fail');
  // The first to look found the store empty; whoever did fails readiness until a later read.
  expect(failing.length).toBeGreaterThanOrEqual(1);
  for (const r of failing)
    expect(lineageOf(r)).toEqual(
      expect.objectContaining({ status: 'fail', output: 'store lost the keyring; re-published' }),
    );
  for (const r of reports) if (r.status !== 'fail') expect(lineageOf(r)?.status).toBe('pass');
  expect(await rejections(instances, valid)).toBe(0);

  // The next poll finds their lineage in the store: readiness passes again.
  await Promise.all(instances.map((app) => app.call('refresh')));
  for (const app of instances) {
    const report = await app.call<HealthReport>('health');
    expect(lineageOf(report)?.status).toBe('pass');
    expect(report.status).not.toBe('fail');
  }
  expect(await rejections(instances, valid)).toBe(0);
  for (const app of instances)
    for (const token of revoked) expect(await codeOf(app.call('verify', { token }))).toBe('token_revoked');

  // A process started now learns everything from the store alone: same keyring, same revocations.
  const late = (await start(1, lateEnv))[0]!;
  expect(await rejections([late], valid)).toBe(0);
  for (const token of revoked) expect(await codeOf(late.call('verify', { token }))).toBe('token_revoked');
  const final = await read();
  expect(final.documents).toBe(1);
  expect(final.doc).toMatchObject({ lineage: before.lineage });
  expect(final.doc!.keys.map((k) => k.kid)).toEqual(before.keys.map((k) => k.kid));
}

describeWithRedis('FLUSHALL under three running processes on Redis', () => {
  // FLUSHALL empties the whole server: this file runs on a Redis of its own (the brief's port).
  const prefix = `{${uniquePrefix('flush')}}:`;

  async function read(): Promise<{ documents: number; doc: KeyringDocument | null }> {
    const client = new Redis(url);
    try {
      const documents = (await client.keys(redisKeyringKey(prefix))).length;
      const raw = await client.get(redisKeyringKey(prefix));
      return { documents, doc: raw === null ? null : (JSON.parse(raw) as KeyringDocument) };
    } finally {
      client.disconnect();
    }
  }
  async function flushAll(): Promise<void> {
    const client = new Redis(url);
    try {
      await client.flushall();
    } finally {
      client.disconnect();
    }
  }

  it('no fork: every token verifies everywhere, readiness fails until re-published, one keyring, revocations hold', async () => {
    const instances = await start(3, {
      KW_PREFIX: prefix,
      KW_SYNC_MS: String(HOUR), // polls only on `refresh`
      KW_SCHEDULER_MS: '100', // and the schedulers run all along
    });
    await scenario(instances, flushAll, read, { KW_PREFIX: prefix });
  }, 240_000);

  it('with polling on: the instances recover on their own, and no valid token is rejected meanwhile', async () => {
    const own = `{${uniquePrefix('flush-poll')}}:`;
    const instances = await start(3, { KW_PREFIX: own, KW_SYNC_MS: '200', KW_SCHEDULER_MS: '100' });
    const { valid, revoked } = await issue(instances);
    const client = new Redis(url);
    try {
      const before = JSON.parse((await client.get(redisKeyringKey(own))) as string) as KeyringDocument;
      await client.flushall();
      let rejected = 0;
      let revokedAccepted = 0;
      await eventually(async () => {
        rejected += await rejections(instances, valid);
        for (const app of instances)
          for (const token of revoked)
            if ((await codeOf(app.call('verify', { token }))) !== 'token_revoked') revokedAccepted += 1;
        const raw = await client.get(redisKeyringKey(own));
        if (raw === null) return false;
        const reports = await Promise.all(instances.map((app) => app.call<HealthReport>('health')));
        return reports.every((r) => lineageOf(r)?.status === 'pass');
      }, 30_000);
      expect(rejected).toBe(0);
      expect(revokedAccepted).toBe(0);
      const after = JSON.parse((await client.get(redisKeyringKey(own))) as string) as KeyringDocument;
      expect(after.lineage).toBe(before.lineage);
      expect(after.keys.map((k) => k.kid)).toEqual(before.keys.map((k) => k.kid));
      // The revocations are back in the store: a process started now rejects them too.
      const late = (await start(1, { KW_PREFIX: own }))[0]!;
      for (const token of revoked) expect(await codeOf(late.call('verify', { token }))).toBe('token_revoked');
      expect(await rejections([late], valid)).toBe(0);
    } finally {
      client.disconnect();
    }
  }, 240_000);
});

describe('keyring rows deleted from a shared SQLite file under three running processes', () => {
  it('no fork: every token verifies everywhere, readiness fails until re-published, one keyring, revocations hold', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyward-loss-'));
    dirs.push(dir);
    const path = join(dir, 'keyward.db');
    const instances = await start(3, {
      KW_SQLITE_PATH: path,
      KW_SYNC_MS: String(HOUR),
      KW_SCHEDULER_MS: '100',
    });
    const db = new Database(path);
    try {
      const read = async () => {
        const rows = db
          .prepare<[string], { value: string }>('SELECT value FROM keyward_kv WHERE key = ?')
          .all(KEYRING_KEY);
        return {
          documents: rows.length,
          doc: rows[0] ? (JSON.parse(rows[0].value) as KeyringDocument) : null,
        };
      };
      // What the operator's mistake does: the keyring document and its generation key are gone;
      // revocations too, as a whole-store loss.
      const lose = async () => {
        db.prepare("DELETE FROM keyward_kv WHERE key LIKE 'keyring%' OR key LIKE 'revoked%'").run();
      };
      await scenario(instances, lose, read, { KW_SQLITE_PATH: path });
    } finally {
      db.close();
    }
  }, 240_000);
});
