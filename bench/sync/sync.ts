/**
 * Sync latency across processes: three app processes (packages/core/test/multiprocess/app.ts) on
 * one dedicated redis-server on loopback. 200 key rotations and 200 jti revocations, one after
 * another from a rotating origin process; for each, the time from the change until every process
 * has applied it. Then the same for rotations seen by a process whose pub/sub subscription was
 * killed (it learns only by polling), and the cost of one poll: generation key vs whole document.
 *
 * Clock: every process reports `performance.timeOrigin + performance.now()`, a monotonic clock
 * anchored to the same wall-clock origin, so differences across processes on one machine are
 * meaningful to well under a millisecond. The change's start is taken in the origin process just
 * before it calls `rotate()` / `revokeToken()`: the measured lag therefore includes the commit
 * itself (key generation, CAS, publish) and is an upper bound on commit-to-apply.
 *
 * Run: pnpm --filter @keyward/bench bench:sync   (needs redis-server on PATH)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { KEYRING_GENERATION_KEY, KEYRING_KEY } from '../../packages/core/src/keys/keyring-store.js';
import { MasterKey } from '../../packages/core/src/keys/master-key.js';
import { createRedisStore } from '../../packages/core/src/store/redis.js';
import { type App, type AppEvent, startApp } from '../../packages/core/test/multiprocess/harness.js';
import { freePort } from '../../packages/testing/src/tools.js';

const ROTATIONS = 200;
const REVOCATIONS = 200;
const DEAF_ROTATIONS = 20;
const POLL_MS = 1000;
const PREFIX = '{kwbench}:';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

function row(name: string, lags: number[], missing: number): string {
  const s = [...lags].sort((a, b) => a - b);
  const f = (v: number) => v.toFixed(2).padStart(8);
  return `| ${name.padEnd(38)} | ${String(lags.length).padStart(5)} | ${f(percentile(s, 50))} | ${f(percentile(s, 99))} | ${f(s.at(-1) ?? Number.NaN)} | ${String(missing).padStart(7)} |`;
}

/** Waits until every app reported applying the change `match` recognises; returns the last apply time. */
async function appliedEverywhere(apps: App[], match: (e: AppEvent) => boolean, timeoutMs: number) {
  const times = await Promise.all(
    apps.map((app) =>
      app
        .waitEvent((e) => e.event === 'applied' && match(e), timeoutMs)
        .then(
          (e) => e.t as number,
          () => undefined,
        ),
    ),
  );
  return times.includes(undefined) ? undefined : Math.max(...(times as number[]));
}

const keyringChange = (generation: number) => (e: AppEvent) =>
  (e.change as { kind: string; generation?: number }).kind === 'keyring' &&
  (e.change as { generation: number }).generation >= generation;
const jtiChange = (jti: string) => (e: AppEvent) =>
  (e.change as { revocation?: { jti?: string } }).revocation?.jti === jti;

async function main(): Promise<void> {
  const port = await freePort();
  const redis: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  const url = `redis://127.0.0.1:${port}`;
  const apps: App[] = [];
  try {
    await new Promise((r) => setTimeout(r, 300));
    const env = {
      REDIS_URL: url,
      KW_PREFIX: PREFIX,
      KW_MASTER: MasterKey.generate().exportText(),
      KW_SYNC_MS: String(POLL_MS),
      KW_REPORT_APPLIED: '1',
      // Back-to-back rotations: lift the bounded keyring's limit (the document size is what is measured).
      KW_MAX_RETIRING: '1000000',
    };
    apps.push(await startApp(env));
    apps.push(...(await Promise.all([startApp(env), startApp(env)])));

    const rotationLags: number[] = [];
    let missing = 0;
    for (let i = 0; i < ROTATIONS; i++) {
      const origin = apps[i % apps.length]!;
      const { generation, startedAt } = await origin.call<{ generation: number; startedAt: number }>(
        'rotate',
      );
      const last = await appliedEverywhere(apps, keyringChange(generation), 3 * POLL_MS);
      if (last === undefined) missing++;
      else rotationLags.push(last - startedAt);
    }

    const revocationLags: number[] = [];
    let missingRevocations = 0;
    for (let i = 0; i < REVOCATIONS; i++) {
      const origin = apps[i % apps.length]!;
      const jti = `bench-${i}`;
      const { startedAt } = await origin.call<{ startedAt: number }>('revokeToken', {
        jti,
        until: Date.now() + 600_000,
      });
      const last = await appliedEverywhere(apps, jtiChange(jti), 3 * POLL_MS);
      if (last === undefined) missingRevocations++;
      else revocationLags.push(last - startedAt);
    }

    // A fourth process that never resubscribes once its pub/sub connection is killed.
    const deaf = await startApp({ ...env, KW_NO_RESUBSCRIBE: '1', KW_CONNECTION_NAME: 'kwbench-deaf' });
    apps.push(deaf);
    const list = execFileSync('redis-cli', ['-p', String(port), 'CLIENT', 'LIST', 'TYPE', 'pubsub'], {
      encoding: 'utf8',
    });
    const id = list
      .split('\n')
      .find((l) => l.includes(' name=kwbench-deaf '))
      ?.match(/id=(\d+)/)?.[1];
    if (!id) throw new Error('the deaf process has no pub/sub connection to kill');
    execFileSync('redis-cli', ['-p', String(port), 'CLIENT', 'KILL', 'ID', id]);
    const deafLags: number[] = [];
    let deafMissing = 0;
    for (let i = 0; i < DEAF_ROTATIONS; i++) {
      const { generation, startedAt } = await apps[0]!.call<{ generation: number; startedAt: number }>(
        'rotate',
      );
      const last = await appliedEverywhere([deaf], keyringChange(generation), 3 * POLL_MS);
      if (last === undefined) deafMissing++;
      else deafLags.push(last - startedAt);
      // Spread the changes over the poll cycle, so the lags sample the whole interval.
      await new Promise((r) => setTimeout(r, Math.random() * POLL_MS));
    }

    // One poll's store work: the generation key alone vs the whole document (+ JSON.parse).
    const store = createRedisStore({ url, prefix: PREFIX });
    const doc = (await store.get(KEYRING_KEY)) ?? '';
    const time = async (fn: () => Promise<unknown>) => {
      for (let i = 0; i < 200; i++) await fn();
      const start = performance.now();
      for (let i = 0; i < 2000; i++) await fn();
      return ((performance.now() - start) / 2000) * 1000;
    };
    const hintUs = await time(() => store.get(KEYRING_GENERATION_KEY));
    const fullUs = await time(async () => JSON.parse((await store.get(KEYRING_KEY)) ?? 'null'));
    await store.close();

    console.log(`sync latency, 3 processes + 1 redis-server on loopback, poll every ${POLL_MS} ms (ms)`);
    console.log(
      '| change                                 |     n |      p50 |      p99 |      max | missing |',
    );
    console.log(
      '|----------------------------------------|-------|----------|----------|----------|---------|',
    );
    console.log(row('rotate, first 20 (keyring <= 24 keys)', rotationLags.slice(0, 20), 0));
    console.log(row('rotate (sig), all 3 applied', rotationLags, missing));
    console.log(row('revoke jti, all 3 applied', revocationLags, missingRevocations));
    console.log(row('rotate, pub/sub lost (poll only)', deafLags, deafMissing));
    console.log(
      `poll cost: generation key ${hintUs.toFixed(0)} µs vs whole document ${fullUs.toFixed(0)} µs ` +
        `(${(doc.length / 1024).toFixed(1)} KiB, ${(JSON.parse(doc) as { keys: unknown[] }).keys.length} keys after the run)`,
    );
  } finally {
    await Promise.all(apps.map((a) => a.close()));
    redis.kill('SIGKILL');
    await once(redis, 'exit');
  }
}

await main();
