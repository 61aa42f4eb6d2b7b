import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, expect, it } from 'vitest';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import { freePort } from '../../../testing/src/tools.js';
import { KEYRING_KEY, type KeyringDocument } from '../../src/keys/keyring-store.js';
import { checkKeyringInvariants } from '../../src/keys/lifecycle.js';
import { MasterKey } from '../../src/keys/master-key.js';
import { type App, codeOf, eventually, startApp } from './harness.js';

const url = redisTestUrl() ?? 'redis://127.0.0.1:6379';
const filePrefix = uniquePrefix('multiprocess');
const MASTER = MasterKey.generate().exportText();
const DAY = 24 * 60 * 60 * 1000;
const POLL_MS = 300;
let n = 0;
const apps: App[] = [];
const prefixes: Array<{ url: string; prefix: string }> = [];

function newPrefix(redisUrl = url): string {
  const prefix = `${filePrefix}${++n}:`;
  prefixes.push({ url: redisUrl, prefix });
  return prefix;
}

async function start(count: number, env: Record<string, string>): Promise<App[]> {
  const make = () => startApp({ KW_MASTER: MASTER, KW_SYNC_MS: String(POLL_MS), REDIS_URL: url, ...env });
  // One first, so the keyring is bootstrapped once; the rest three at a time (two cores).
  const started = [await make()];
  apps.push(started[0]!);
  while (started.length < count) {
    const batch = await Promise.all(Array.from({ length: Math.min(3, count - started.length) }, make));
    apps.push(...batch);
    started.push(...batch);
  }
  return started;
}

async function storedKeyring(redisUrl: string, prefix: string): Promise<KeyringDocument> {
  const client = new Redis(redisUrl);
  try {
    // The driver stores member `id` of collection `c/` at `<prefix>k:{c/}id`.
    const slash = KEYRING_KEY.lastIndexOf('/');
    const redisKey = `${prefix}k:{${KEYRING_KEY.slice(0, slash + 1)}}${KEYRING_KEY.slice(slash + 1)}`;
    return JSON.parse((await client.get(redisKey)) as string) as KeyringDocument;
  } finally {
    client.disconnect();
  }
}

function dropPrefix(redisUrl: string, prefix: string): Promise<void> {
  return dropRedisPrefix(redisUrl, prefix);
}

const verifies = (app: App, token: string) => app.call<string>('verify', { token });

describeWithRedis('several processes on one Redis', () => {
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    for (const { url: u, prefix } of prefixes) await dropPrefix(u, prefix);
  });

  it('rotate on one: a token signed by the new key verifies on all three', async () => {
    const [a, b, c] = await start(3, { KW_PREFIX: newPrefix() });
    const old = await a!.call<string>('sign');
    const { kid, previousKid } = await a!.call<{ kid: string; previousKid: string }>('rotate');
    expect(kid).not.toBe(previousKid);
    const fresh = await a!.call<string>('sign');
    for (const app of [a!, b!, c!]) {
      await eventually(async () => (await verifies(app, fresh)) === kid);
      expect(await verifies(app, old)).toBe(previousKid);
    }
    // b signs with the new key too once it applied the change.
    expect(await verifies(c!, await b!.call<string>('sign'))).toBe(kid);
  });

  it('revoke on one: tokens of the revoked key are rejected on all three', async () => {
    const [a, b, c] = await start(3, { KW_PREFIX: newPrefix() });
    const token = await b!.call<string>('sign');
    const kid = await verifies(c!, token);
    for (const app of [a!, b!, c!]) expect(await verifies(app, token)).toBe(kid);
    await a!.call('revoke', { kid });
    for (const app of [a!, b!, c!])
      await eventually(async () => (await codeOf(verifies(app, token))) === 'key_revoked');
    expect(await verifies(a!, await c!.call<string>('sign'))).not.toBe(kid);
  });

  it('ten schedulers racing at the due instant make exactly one new key', async () => {
    const prefix = newPrefix();
    const racers = await start(10, { KW_PREFIX: prefix });
    // Every clock jumps to one day before the signing key's period ends: a pending key is due.
    await Promise.all(racers.map((app) => app.call('setOffset', { ms: 89 * DAY })));
    const at = Date.now() + 500;
    const results = await Promise.all(racers.map((app) => app.call<{ status: string }>('tick', { at })));
    expect(results.filter((r) => r.status === 'rotated')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'failed')).toEqual([]);
    const doc = await storedKeyring(url, prefix);
    expect(doc.keys.filter((k) => k.use === 'sig' && k.state === 'pending')).toHaveLength(1);
    expect(doc.fence).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it('kill -9 of a process mid-rotation leaves a consistent keyring that a restarted process serves', async () => {
    const prefix = newPrefix();
    const [victim, peer] = await start(2, { KW_PREFIX: prefix });
    await victim!.call('rotateForever');
    await victim!.waitEvent(
      (e) => e.event === 'rotated' && victim!.events.filter((x) => x.event === 'rotated').length >= 3,
    );
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 20))); // land anywhere in a rotation
    await victim!.kill();
    const doc = await storedKeyring(url, prefix);
    expect(checkKeyringInvariants(doc.keys)).toEqual([]);
    const [restarted] = await start(1, { KW_PREFIX: prefix });
    expect(await restarted!.call('invariants')).toEqual([]);
    await peer!.call('refresh');
    const after = await storedKeyring(url, prefix);
    for (const app of [restarted!, peer!]) {
      expect((await app.call<{ generation: number }>('status')).generation).toBe(after.generation);
      expect(await verifies(app, await restarted!.call<string>('sign'))).toBe(
        after.keys.find((k) => k.use === 'sig' && k.state === 'active')?.kid,
      );
    }
  });

  it('an instance whose subscription was dropped converges within one poll', async () => {
    const prefix = newPrefix();
    const name = `kwdeaf${n}`;
    const [a] = await start(1, { KW_PREFIX: prefix, KW_REPORT_APPLIED: '1' });
    // The deaf instance does not resubscribe after the kill, so only its poller can repair it.
    const [deaf] = await start(1, {
      KW_PREFIX: prefix,
      KW_REPORT_APPLIED: '1',
      KW_NO_RESUBSCRIBE: '1',
      KW_CONNECTION_NAME: name,
    });
    const admin = new Redis(url);
    const list = String(await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
    const ids = list
      .split('\n')
      .filter((l) => l.includes(` name=${name} `))
      .map((l) => /id=(\d+)/.exec(l)?.[1]);
    expect(ids.length).toBe(1);
    await admin.call('CLIENT', 'KILL', 'ID', ids[0]!);
    admin.disconnect();
    const { generation, committedAt } = await a!.call<{ generation: number; committedAt: number }>('rotate');
    const applied = await deaf!.waitEvent(
      (e) => e.event === 'applied' && (e.change as { generation?: number }).generation === generation,
      5000,
    );
    // One poll interval plus scheduling slack on a loaded 2-core CI machine.
    expect((applied.t as number) - committedAt).toBeLessThanOrEqual(POLL_MS * 2 + 250);
  });
});

describeWithRedis('Redis stopped and restarted during traffic', () => {
  let server: ChildProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'kw-redis-'));
  afterAll(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
    server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('rejects no valid token while Redis is down, reports stale, and converges after the restart', async () => {
    const port = await freePort();
    const redisUrl = `redis://127.0.0.1:${port}`;
    // Durable like a production Redis (AOF, fsync on every write), so the restart keeps the keyring.
    const startServer = () =>
      spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'yes',
          '--appendfsync',
          'always',
        ],
        {
          stdio: 'ignore',
        },
      );
    server = startServer();
    const ping = async () => {
      const client = new Redis(redisUrl, {
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        lazyConnect: true,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        return (await client.ping()) === 'PONG';
      } finally {
        client.disconnect();
      }
    };
    await eventually(ping);
    const prefix = newPrefix(redisUrl);
    const env = { KW_MASTER: MASTER, KW_SYNC_MS: String(POLL_MS), REDIS_URL: redisUrl, KW_PREFIX: prefix };
    const first = await startApp(env);
    const instances = [first, ...(await Promise.all([startApp(env), startApp(env)]))];
    apps.push(...instances);
    const tokens = await Promise.all(instances.map((app) => app.call<string>('sign')));
    const check = async () => {
      for (const app of instances) for (const token of tokens) await verifies(app, token);
    };
    await check();
    const generation = (await first.call<{ generation: number }>('status')).generation;

    server.kill('SIGTERM');
    await once(server, 'exit');
    for (const app of instances)
      await eventually(async () => (await app.call<{ stale: boolean }>('status')).stale);
    await check(); // fail static: every token still verifies everywhere
    tokens.push(...(await Promise.all(instances.map((app) => app.call<string>('sign')))));
    await check();
    expect(await codeOf(first.call('rotate'))).toBe('store_unavailable');
    expect((await first.call<{ generation: number }>('status')).generation).toBe(generation);

    server = startServer();
    for (const app of instances)
      await eventually(async () => !(await app.call<{ stale: boolean }>('status')).stale, 15_000);
    await check();
    const { kid } = await instances[1]!.call<{ kid: string }>('rotate');
    const fresh = await instances[1]!.call<string>('sign');
    for (const app of instances) await eventually(async () => (await verifies(app, fresh)) === kid);
    await check(); // tokens of the previous key keep verifying after the rotation
  });
});
