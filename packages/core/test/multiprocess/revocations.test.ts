import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import { MasterKey } from '../../src/keys/master-key.js';
import type { SyncStatus } from '../../src/sync/sync.js';
import { type App, type AppEvent, startApp } from './harness.js';

const url = redisTestUrl() ?? 'redis://127.0.0.1:6379';
const MASTER = MasterKey.generate().exportText();
const apps: App[] = [];
const prefixes: string[] = [];
const STORM = 300;
const CALM = 50;
const SEEDED = 3000;

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});
afterAll(async () => {
  for (const prefix of prefixes) await dropRedisPrefix(url, prefix);
});

const revocationOf = (jti: string) => (e: AppEvent) =>
  e.event === 'applied' &&
  (e.change as { kind?: string; revocation?: { jti?: string } }).kind === 'revocation' &&
  (e.change as { revocation: { jti?: string } }).revocation.jti === jti;

describeWithRedis('token revocations while the subscriber connections are killed', () => {
  it('a revoked token is never accepted again, and once the subscription is back polls stop reloading', async () => {
    const prefix = `{${uniquePrefix('revocations')}}:`;
    prefixes.push(prefix);
    // HS256, because verifying is then cheap: the checker verifies hundreds of rejected (so never
    // cached) tokens in a loop.
    const env = { KW_MASTER: MASTER, REDIS_URL: url, KW_PREFIX: prefix, KW_SIGNING_ALG: 'HS256' };
    // Older revocations already in the store, so a reload lists for long enough that
    // announcements land while it runs (the window in which a replacing reload forgot them).
    const seeder = new Redis(url);
    const seeded = seeder.pipeline();
    const until = Date.now() + 10 * 60_000;
    for (let i = 0; i < SEEDED; i++)
      seeded.set(`${prefix}k:revoked:jti/seed${i}`, String(until), 'PX', 600_000);
    await seeded.exec();
    seeder.disconnect();
    const writer = await startApp({ ...env, KW_SYNC_MS: '3600000' });
    apps.push(writer);
    // The checker polls only when the test says so (refresh), so every reload it counts is one
    // the test caused; it reports every revocation it applies from an announcement.
    const checker = await startApp({ ...env, KW_SYNC_MS: '3600000', KW_REPORT_APPLIED: '1' });
    apps.push(checker);
    const minted = await writer.call<Array<{ jti: string; token: string; exp: number }>>('signMany', {
      count: STORM + CALM,
      sub: 'victim',
    });
    await checker.call('track', { tokens: minted.map((m) => m.token) });
    const status = () => checker.call<SyncStatus>('status');

    // Storm: steady revocations while every pub/sub connection is killed again and again; the
    // checker polls now and then, racing the announcements that still get through.
    const admin = new Redis(url);
    let killing = true;
    let kills = 0;
    const killer = (async () => {
      while (killing) {
        kills += Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    // The checker verifies every token continuously, between the steps of its own reloads.
    await checker.call('watch');
    try {
      for (let i = 0; i < STORM; i++) {
        const { jti, exp } = minted[i]!;
        // Most revocations land while the checker polls, and reloads (announcements are lost): the
        // poll starts first, the revocation 0–5 ms later, so it falls anywhere in the listing.
        const polled = i % 4 === 0 ? undefined : checker.call('refresh');
        await new Promise((r) => setTimeout(r, i % 6));
        await Promise.all([writer.call('revokeToken', { jti, until: exp * 1000 }), polled]);
      }
    } finally {
      killing = false;
      await killer;
      admin.disconnect();
    }
    expect(kills).toBeGreaterThan(0);
    const watched = await checker.call<{ sweeps: number; acceptedAgain: number }>('watchReport');
    expect(watched.sweeps).toBeGreaterThan(STORM);
    expect(watched.acceptedAgain, 'verifications that accepted a token already rejected').toBe(0);
    await checker.call('refresh');
    const afterStorm = await checker.call<Array<string | null>>('checkTracked', { count: STORM });
    expect(afterStorm).toEqual(Array.from({ length: STORM }, () => 'token_revoked'));
    expect((await status()).revocationReloads).toBeGreaterThan(0); // announcements were lost

    // The subscription comes back: wait until an announcement reaches the checker on its own.
    let probe = 0;
    for (;;) {
      const jti = `probe${probe++}`;
      await writer.call('revokeToken', { jti, until: Date.now() + 60_000 });
      const heard = await checker.waitEvent(revocationOf(jti), 1000).then(
        () => true,
        () => false,
      );
      if (heard) break;
      expect(probe).toBeLessThan(30);
    }
    await checker.call('refresh'); // repairs what was lost while resubscribing
    const reloads = (await status()).revocationReloads;

    // Calm: each revocation arrives by announcement, and the poll after it reloads nothing.
    for (let i = STORM; i < STORM + CALM; i++) {
      const { jti, exp } = minted[i]!;
      await writer.call('revokeToken', { jti, until: exp * 1000 });
      await checker.waitEvent(revocationOf(jti), 5000);
      await checker.call('refresh');
      const s = await status();
      expect(s.revocationReloads).toBe(reloads);
      expect(s.stale).toBe(false);
    }
    const all = await checker.call<Array<string | null>>('checkTracked', {});
    expect(all).toEqual(Array.from({ length: STORM + CALM }, () => 'token_revoked'));
  }, 120_000);

  it('logout everywhere revokes a token minted just before by a process whose clock runs 1 s ahead; new logins on both verify on both', async () => {
    const prefix = `{${uniquePrefix('revocations')}}:`;
    prefixes.push(prefix);
    await skewedLogoutEverywhere({ REDIS_URL: url, KW_PREFIX: prefix });
  }, 60_000);
});

/**
 * Logout-everywhere against a process whose clock runs 1 s ahead (`store`: the store's env): a
 * token it minted just before is revoked on both processes, and a new login on either verifies on both.
 */
async function skewedLogoutEverywhere(store: Record<string, string>): Promise<void> {
  const env = { KW_MASTER: MASTER, KW_SYNC_MS: '3600000', ...store };
  const a = await startApp(env);
  apps.push(a);
  const ahead = await startApp({ ...env, KW_CLOCK_OFFSET_MS: '1000' });
  apps.push(ahead);
  const verifies = (app: App, token: string) =>
    app.call<string>('verify', { token }).then(
      () => undefined,
      (err: { code?: string }) => err.code,
    );

  const minted = await ahead.call<string>('sign', { sub: 'alice' });
  await a.call('revokeSubject', { sub: 'alice' });
  await Promise.all([a.call('refresh'), ahead.call('refresh')]);
  for (const app of [a, ahead]) expect(await verifies(app, minted)).toBe('token_revoked');

  for (const issuer of [a, ahead]) {
    const fresh = await issuer.call<string>('sign', { sub: 'alice' });
    for (const app of [a, ahead]) expect(await verifies(app, fresh)).toBeUndefined();
  }
}

describe('logout everywhere with a skewed clock (sqlite, one file shared by the processes)', () => {
  it('revokes a token minted just before by a process whose clock runs 1 s ahead; new logins on both verify on both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-skew-'));
    try {
      await skewedLogoutEverywhere({ KW_SQLITE_PATH: join(dir, 'keyward.db') });
    } finally {
      await Promise.all(apps.splice(0).map((a) => a.close()));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
