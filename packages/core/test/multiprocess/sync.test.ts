/**
 * The multi-process sync suite (sync-suite.ts) on one standalone Redis, and what only a
 * standalone Redis can do here: the server stopped and restarted under running processes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { describeWithRedis, redisTestUrl, uniquePrefix } from '../../../testing/src/redis.js';
import { freePort } from '../../../testing/src/tools.js';
import { MasterKey } from '../../src/keys/master-key.js';
import { type App, codeOf, eventually, startApp } from './harness.js';
import { redisDriver } from './sync-drivers.js';
import { syncSuite } from './sync-suite.js';

const url = redisTestUrl() ?? 'redis://127.0.0.1:6379';
const filePrefix = uniquePrefix('multiprocess');
const MASTER = MasterKey.generate().exportText();
const POLL_MS = 300;
const apps: App[] = [];

const verifies = (app: App, token: string) => app.call<string>('verify', { token });

describeWithRedis('several processes on one Redis', () => {
  syncSuite(redisDriver(url, filePrefix));
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
    const prefix = `${filePrefix}restart:`; // a dedicated server, killed afterwards
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
