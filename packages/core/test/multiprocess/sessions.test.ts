/**
 * Complete family revocation across processes: one process refreshes a session 40 times, another
 * presents a spent refresh token after the reuse interval; every access token the family issued
 * (the first one included) is then rejected on both processes. On a real Redis and on one SQLite
 * file shared by the processes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import { MasterKey } from '../../src/keys/master-key.js';
import { type App, startApp } from './harness.js';

const url = redisTestUrl() ?? 'redis://127.0.0.1:6379';
const MASTER = MasterKey.generate().exportText();
const REFRESHES = 40;
const apps: App[] = [];
const prefixes: string[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});
afterAll(async () => {
  for (const prefix of prefixes) await dropRedisPrefix(url, prefix);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Pair {
  access_token: string;
  refresh_token: string;
}

const verdict = (app: App, token: string) =>
  app.call<string>('verify', { token }).then(
    () => 'ok',
    (err: { code?: string }) => err.code ?? 'error',
  );

async function scenario(env: Record<string, string>): Promise<void> {
  // A reuse interval of 0: a spent token presented again is a reuse at once (no grace to wait out).
  const base = { KW_MASTER: MASTER, KW_SYNC_MS: '3600000', KW_REUSE_INTERVAL_MS: '0', ...env };
  const a = await startApp(base);
  apps.push(a);
  const b = await startApp(base);
  apps.push(b);

  const pairs: Pair[] = [await a.call<Pair>('issueSession', { sub: 'alice' })];
  for (let i = 0; i < REFRESHES; i++)
    pairs.push(await a.call<Pair>('refreshSession', { refresh: pairs.at(-1)!.refresh_token }));
  for (const app of [a, b]) expect(await verdict(app, pairs[0]!.access_token)).toBe('ok');

  // The first refresh token, spent 40 refreshes ago... is beyond the remembered depth (16): it
  // reads as unknown. One spent within the depth is a reuse and revokes the whole family.
  expect(await b.call('refreshSession', { refresh: pairs[0]!.refresh_token }).catch((e) => e.code)).toBe(
    'refresh_token_invalid',
  );
  const reused = pairs.at(-5)!.refresh_token;
  expect(await b.call('refreshSession', { refresh: reused }).catch((e) => e.code)).toBe(
    'refresh_token_reused',
  );
  await Promise.all([a.call('refresh'), b.call('refresh')]);

  for (const app of [a, b]) {
    const verdicts = await Promise.all(pairs.map((p) => verdict(app, p.access_token)));
    expect(verdicts).toEqual(pairs.map(() => 'token_revoked'));
  }
  // The newest refresh token is dead too.
  expect(
    await a.call('refreshSession', { refresh: pairs.at(-1)!.refresh_token }).catch((e) => e.code),
  ).toMatch(/^refresh_token_(reused|invalid)$/);
}

describeWithRedis('a 40-refresh family revoked on reuse, across processes (redis)', () => {
  it('every access token of the family is rejected on every process, the first one included', async () => {
    const prefix = `{${uniquePrefix('sessions')}}:`;
    prefixes.push(prefix);
    await scenario({ REDIS_URL: url, KW_PREFIX: prefix });
  }, 120_000);
});

describe('a 40-refresh family revoked on reuse, across processes (sqlite)', () => {
  it('every access token of the family is rejected on every process, the first one included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-sessions-'));
    dirs.push(dir);
    await scenario({ KW_SQLITE_PATH: join(dir, 'keyward.db') });
  }, 120_000);
});
