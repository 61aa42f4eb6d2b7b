/**
 * The published standby signing key across processes, on a real Redis and on one SQLite file: the key
 * a rotation promotes was in every instance's JWKS before it signs, and the other instances verify its
 * first token at once (no sync needed: a pending key already verifies).
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
import type { KeyRecord } from '../../src/keys/types.js';
import { type App, eventually, startApp } from './harness.js';

const MASTER = MasterKey.generate().exportText();
const JWKS_MAX_AGE = 10 * 60 * 1000; // the default policy's
const apps: App[] = [];

async function start(count: number, env: Record<string, string>): Promise<App[]> {
  const make = () => startApp({ KW_MASTER: MASTER, KW_SYNC_MS: '300', ...env });
  // One first, so the keyring is bootstrapped once; then the others (two cores: not all at once).
  const started = [await make()];
  apps.push(started[0]!);
  while (started.length < count) {
    const app = await make();
    apps.push(app);
    started.push(app);
  }
  return started;
}

const standbyOf = async (app: App) =>
  (await app.call<KeyRecord[]>('keys')).find((k) => k.use === 'sig' && k.state === 'pending');
const jwksOf = (app: App) => app.call<string[]>('jwks');
const verifies = (app: App, token: string) => app.call<string>('verify', { token });

function standbyScenario(env: () => Record<string, string>) {
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  it('rotate on one: the standby was in every JWKS before it signs, the others verify at once; revoke likewise', async () => {
    const [a, b, c] = await start(3, env());
    const all = [a!, b!, c!];

    // Before anything signs with it, the standby is in every instance's JWKS.
    const standby = (await standbyOf(a!))!;
    expect(standby).toBeDefined();
    for (const app of all) expect(await jwksOf(app)).toContain(standby.kid);

    const rotated = await a!.call<{ kid: string; previousKid: string; unpublished: boolean }>('rotate');
    expect(rotated).toMatchObject({ kid: standby.kid, unpublished: false });
    const token = await a!.call<string>('sign');
    // At once: b and c have not necessarily synced the rotation, and still verify its first token.
    for (const app of [b!, c!]) expect(await verifies(app, token)).toBe(standby.kid);

    // The following standby reaches every instance's JWKS.
    const next = (await standbyOf(a!))!;
    expect(next.kid).not.toBe(standby.kid);
    for (const app of all) await eventually(async () => (await jwksOf(app)).includes(next.kid));

    // jwksMaxAge later (every clock moved on), an emergency revocation on b promotes that standby.
    for (const app of all) await app.call('setOffset', { ms: JWKS_MAX_AGE });
    await eventually(async () => (await standbyOf(b!))?.kid === next.kid);
    const revoked = await b!.call<{ revoked: string; replacement: string; unpublished: boolean }>('revoke', {
      kid: standby.kid,
    });
    expect(revoked).toEqual(
      expect.objectContaining({ revoked: standby.kid, replacement: next.kid, unpublished: false }),
    );
    const afterRevocation = await b!.call<string>('sign');
    for (const app of [a!, c!]) expect(await verifies(app, afterRevocation)).toBe(next.kid);
    for (const app of all) expect(await app.call<string[]>('invariants')).toEqual([]);
  });
}

const redisUrl = redisTestUrl() ?? 'redis://127.0.0.1:6379';
const prefixes: string[] = [];
describeWithRedis('standby signing key, several processes on one Redis', () => {
  afterAll(async () => {
    for (const prefix of prefixes) await dropRedisPrefix(redisUrl, prefix);
  });
  standbyScenario(() => {
    const prefix = `{${uniquePrefix('standby')}}:`;
    prefixes.push(prefix);
    return { REDIS_URL: redisUrl, KW_PREFIX: prefix };
  });
});

describe('standby signing key, several processes on one SQLite file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kw-standby-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  standbyScenario(() => ({ KW_SQLITE_PATH: join(dir, `keyward-${++n}.db`) }));
});
