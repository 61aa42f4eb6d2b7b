import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import { createKeywardCore } from '../core.js';
import { MasterKey } from '../keys/master-key.js';
import { createRedisStore } from '../store/redis.js';
import { createSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/types.js';
import { createIdpTokenStore } from './store.js';

const PROCESSES = 4;
const worker = fileURLToPath(new URL('./__fixtures__/refresh-worker.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kw-idp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts a worker; resolves `ready` once it is set up, `done` with the tokens it got. */
function startWorker(args: string[], masterKey: string) {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--conditions=@keyward/source', '--import', 'tsx', worker, ...args],
    {
      env: { ...process.env, KW_MASTER_KEY: masterKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => {
    onReady = r;
  });
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('ready\n')) onReady();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const done = new Promise<string[]>((resolve, reject) =>
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('['));
      if (code === 0 && line) resolve(JSON.parse(line) as string[]);
      else reject(new Error(`worker exited ${code}: ${err.slice(0, 2000)}`));
    }),
  );
  return { ready, done };
}

async function raceProcesses(store: Store, args: string[]) {
  const masterKey = MasterKey.generate().exportText();
  const core = await createKeywardCore({ store, masterKey, logger: false, audit: false, scheduler: false });
  const idp = createIdpTokenStore(core, { refresh: async () => ({ accessToken: 'unused', expiresAt: 0 }) });
  await idp.save({
    sub: 'user_1',
    provider: 'github',
    accessToken: 'at-1',
    refreshToken: 'rt-1',
    expiresAt: Date.now() + 5_000,
  });
  const workers = Array.from({ length: PROCESSES }, () => startWorker(args, masterKey));
  await Promise.all(workers.map((w) => w.ready));
  await store.set('test:go', '1');
  const results = (await Promise.all(workers.map((w) => w.done))).flat();
  const calls = await store.get('test:refresh-calls:rt-1');
  const after = await createIdpTokenStore(core, {
    refresh: async () => ({ accessToken: 'unused', expiresAt: 0 }),
  }).get('user_1', 'github');
  await core.close();
  return { results, calls, after };
}

describe('IdP refresh across processes (sqlite)', () => {
  it(`${PROCESSES} processes × 15 concurrent callers: exactly one refresh call`, async () => {
    const path = join(dir, 'idp.db');
    const store = createSqliteStore({ path });
    const { results, calls, after } = await raceProcesses(store, ['sqlite', path, '']);
    expect(calls).toBe('1');
    expect(results).toHaveLength(PROCESSES * 15);
    expect(new Set(results).size).toBe(1);
    expect(results[0]).toMatch(/^at-new-\d+$/);
    expect(after).toBe(results[0]);
    await store.close();
  }, 120_000);
});

describeWithRedis('IdP refresh across processes (redis)', () => {
  const prefix = `{${uniquePrefix('idp')}}:`;
  afterAll(async () => {
    await dropRedisPrefix(redisTestUrl()!, prefix);
  });

  it(`${PROCESSES} processes × 15 concurrent callers: exactly one refresh call`, async () => {
    const url = redisTestUrl()!;
    const store = createRedisStore({ url, prefix });
    const { results, calls, after } = await raceProcesses(store, ['redis', url, prefix]);
    expect(calls).toBe('1');
    expect(new Set(results).size).toBe(1);
    expect(results).toHaveLength(PROCESSES * 15);
    expect(after).toBe(results[0]);
    await store.close();
  }, 120_000);
});
