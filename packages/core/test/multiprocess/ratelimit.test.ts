/**
 * The brute-force limiter across processes (regression #11): two app processes on one real Redis,
 * and on one SQLite file, share the count of failed logins: the per-user limit holds for the
 * deployment, not per instance.
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
const limits = { login: { perUser: 4, perAddress: 6, windowSec: 3600 } };
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

type Decision = { allowed: boolean; limit?: string; retryAfterSec?: number };

async function scenario(env: Record<string, string>): Promise<void> {
  const base = { KW_MASTER: MASTER, KW_SYNC_MS: '3600000', ...env };
  const a = await startApp(base);
  apps.push(a);
  const b = await startApp(base);
  apps.push(b);
  const attempt = (app: App, username: string, extra: Record<string, unknown> = {}) =>
    app.call<Decision>('rateLimitAttempt', { limits, username, ...extra });

  // Four failures of one username, alternating between the instances, then both refuse it.
  for (const app of [a, b, a, b]) expect(await attempt(app, 'alice')).toEqual({ allowed: true });
  for (const app of [a, b])
    expect(await attempt(app, 'alice')).toEqual({
      allowed: false,
      limit: 'user',
      retryAfterSec: expect.any(Number),
    });
  // Another username from the same address: allowed until the shared address limit (6).
  expect(await attempt(b, 'bob')).toEqual({ allowed: true });
  expect(await attempt(a, 'carol')).toEqual({ allowed: true });
  expect(await attempt(b, 'dave')).toMatchObject({ allowed: false, limit: 'address' });
  // From another address, a success on one instance gives its attempt back on both.
  const other = { address: '198.51.100.7' };
  for (let i = 0; i < 4; i++)
    expect(await attempt(i % 2 ? a : b, 'erin', { ...other, succeeded: true })).toEqual({ allowed: true });
  expect(await attempt(a, 'erin', other)).toEqual({ allowed: true });
}

describeWithRedis('login limiter across processes (redis)', () => {
  it('two processes on one Redis share the failed-login counts (regression #11)', async () => {
    const prefix = `{${uniquePrefix('ratelimit')}}:`;
    prefixes.push(prefix);
    await scenario({ REDIS_URL: url, KW_PREFIX: prefix });
  }, 120_000);
});

describe('login limiter across processes (sqlite)', () => {
  it('two processes on one SQLite file share the failed-login counts (regression #11)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-ratelimit-'));
    dirs.push(dir);
    await scenario({ KW_SQLITE_PATH: join(dir, 'keyward.db') });
  }, 120_000);
});
