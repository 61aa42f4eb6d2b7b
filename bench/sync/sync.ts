/**
 * Sync latency across processes, per store driver, side by side. For each driver the benchmark
 * starts its own servers (a redis-server; a 3 + 3 Redis Cluster; a master + replica + 3 sentinels;
 * a PostgreSQL server with initdb / pg_ctl; an SQLite file), then app processes
 * (packages/core/test/multiprocess/app.ts) on it:
 *
 * - with 3 and with 10 instances: key rotations and jti revocations one after another from a
 *   rotating origin instance; for each, the time from the change until every instance has
 *   applied it (p50 / p99);
 * - rotations seen by an instance whose change feed was cut (pub/sub connection killed, LISTEN
 *   backend terminated; it learns only by polling — except on a cluster, whose subscriber ioredis
 *   replaces by itself), where the driver has a feed;
 * - the cost of one poll: the generation key vs the whole document (+ JSON.parse);
 * - the failover gap: the primary is killed (cluster: the master owning keyward's slot, the prefix
 *   `{kwbench}…` puts every key on one, node timeout 1 s; sentinel: the master, down-after 1 s;
 *   PostgreSQL: the server, `pg_ctl stop -m immediate`, started again by the benchmark after
 *   PG_DOWN_MS, which the table subtracts), and one instance (store timeout 1 s on Redis) writes a
 *   revocation every 20 ms until one commits. Gap = kill → that commit.
 *
 * Clock: every process reports `performance.timeOrigin + performance.now()`, a monotonic clock
 * anchored to the same wall-clock origin, so differences across processes on one machine are
 * meaningful to well under a millisecond. A change's start is taken in the origin process just
 * before it calls `rotate()` / `revokeToken()`: the lag includes the commit itself (key
 * generation, CAS, publish) and is an upper bound on commit-to-apply.
 *
 * Run: npm run bench:sync   (BENCH_DRIVERS=redis,cluster,sentinel,postgres,sqlite — default: all
 * whose tools are on this machine: redis-server + redis-cli, initdb + pg_ctl)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { KEYRING_GENERATION_KEY, KEYRING_KEY } from '../../packages/core/src/keys/keyring-store.js';
import { MasterKey } from '../../packages/core/src/keys/master-key.js';
import { type App, type AppEvent, startApp } from '../../packages/core/test/multiprocess/harness.js';
import { createPgServer, hasPostgresServer } from '../../packages/core/test/multiprocess/pg-server.js';
import {
  clusterDriver,
  postgresDriver,
  redisDriver,
  sentinelDriver,
  sqliteDriver,
} from '../../packages/core/test/multiprocess/sync-drivers.js';
import type { SyncDriver } from '../../packages/core/test/multiprocess/sync-suite.js';
import { startCluster, startSentinels } from '../../packages/testing/src/redis-ha.js';
import { freePort, hasTool } from '../../packages/testing/src/tools.js';

const N3 = Number(process.env.BENCH_N3 ?? 100);
const N10 = Number(process.env.BENCH_N10 ?? 30);
const DEAF_ROTATIONS = Number(process.env.BENCH_DEAF ?? 10);
const POLL_MS = 1000;
const PG_DOWN_MS = 1000;
const sharedNow = () => performance.timeOrigin + performance.now();

/** One driver under test: its servers, and how to kill its primary (absent: no failover). */
interface Target {
  key: string;
  driver: SyncDriver;
  /** Extra env of the apps. */
  env?: Record<string, string>;
  /** Kills the primary; resolves once it is dead (and, PostgreSQL, schedules its restart). */
  killPrimary?(env: Record<string, string>): Promise<void>;
  /** What the benchmark subtracts from the raw failover gap (PostgreSQL's restart delay). */
  gapOffsetMs?: number;
  stop(): Promise<void>;
}

async function redisTarget(): Promise<Target> {
  const port = await freePort();
  const server: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  await delay(300);
  return {
    key: 'redis',
    driver: redisDriver(`redis://127.0.0.1:${port}`, '{kwbench}:'),
    async stop() {
      server.kill('SIGKILL');
      await once(server, 'exit');
    },
  };
}

async function clusterTarget(): Promise<Target> {
  const cluster = await startCluster(3, 1);
  return {
    key: 'cluster',
    driver: clusterDriver(() => cluster, '{kwbench}'),
    env: { KW_STORE_TIMEOUT_MS: '1000' },
    async killPrimary() {
      const port = await cluster.masterOf(await cluster.keyslot('{kwbench}'));
      const node = cluster.nodes.find((n) => n.port === port)!;
      node.process.kill('SIGKILL');
      await once(node.process, 'exit');
    },
    stop: () => cluster.stop(),
  };
}

async function sentinelTarget(): Promise<Target> {
  const sentinels = await startSentinels();
  return {
    key: 'sentinel',
    driver: sentinelDriver(() => sentinels, '{kwbench}'),
    env: { KW_STORE_TIMEOUT_MS: '1000' },
    async killPrimary() {
      sentinels.master.process.kill('SIGKILL');
      await once(sentinels.master.process, 'exit');
    },
    stop: () => sentinels.stop(),
  };
}

async function postgresTarget(): Promise<Target> {
  const server = createPgServer(await freePort());
  server.start();
  return {
    key: 'postgres',
    driver: postgresDriver(server.url),
    async killPrimary() {
      server.crash();
      // Started again after a fixed delay; pg_ctl -w blocks this process until it accepts connections.
      setTimeout(() => server.start(), PG_DOWN_MS);
    },
    gapOffsetMs: PG_DOWN_MS,
    async stop() {
      server.destroy();
    },
  };
}

async function sqliteTarget(): Promise<Target> {
  const driver = sqliteDriver();
  return { key: 'sqlite', driver, stop: async () => driver.cleanup?.() };
}

const targets: Record<string, { available: () => boolean; make: () => Promise<Target> }> = {
  redis: { available: () => hasTool('redis-server'), make: redisTarget },
  cluster: { available: () => hasTool('redis-server') && hasTool('redis-cli'), make: clusterTarget },
  sentinel: { available: () => hasTool('redis-server'), make: sentinelTarget },
  postgres: { available: hasPostgresServer, make: postgresTarget },
  sqlite: { available: () => true, make: sqliteTarget },
};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** Lags of one series and how many changes never reached every instance in time. */
interface Series {
  lags: number[];
  missing: number;
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
/**
 * The revocation of `jti` applied: its announcement, or a merge-reload of the revocation set after
 * the change began (a poll that found the revocation generation ahead first; the announcement is
 * then skipped as already seen).
 */
const jtiChange = (jti: string, startedAt: number) => (e: AppEvent) =>
  (e.change as { revocation?: { jti?: string } }).revocation?.jti === jti ||
  ((e.change as { kind: string }).kind === 'revocations' && (e.t as number) >= startedAt);

async function rotations(apps: App[], count: number): Promise<Series> {
  const s: Series = { lags: [], missing: 0 };
  for (let i = 0; i < count; i++) {
    const origin = apps[i % apps.length]!;
    const { generation, startedAt } = await origin.call<{ generation: number; startedAt: number }>('rotate');
    const last = await appliedEverywhere(apps, keyringChange(generation), 3 * POLL_MS);
    if (last === undefined) s.missing++;
    else s.lags.push(last - startedAt);
  }
  return s;
}

async function revocations(apps: App[], count: number, label: string): Promise<Series> {
  const s: Series = { lags: [], missing: 0 };
  for (let i = 0; i < count; i++) {
    const origin = apps[i % apps.length]!;
    const jti = `bench-${label}-${i}`;
    const { startedAt } = await origin.call<{ startedAt: number }>('revokeToken', {
      jti,
      until: Date.now() + 600_000,
    });
    const last = await appliedEverywhere(apps, jtiChange(jti, startedAt), 3 * POLL_MS);
    if (last === undefined) s.missing++;
    else s.lags.push(last - startedAt);
  }
  return s;
}

interface Result {
  key: string;
  rotate3: Series;
  revoke3: Series;
  rotate10: Series;
  revoke10: Series;
  deaf?: Series;
  pollUs: { generation: number; document: number; docKiB: number; keys: number };
  failover?: { gapMs: number; attempts: number; codes: string[] };
}

async function startMany(env: Record<string, string>, count: number, apps: App[]): Promise<void> {
  if (apps.length === 0) apps.push(await startApp(env));
  while (apps.length < count)
    apps.push(
      ...(await Promise.all(Array.from({ length: Math.min(3, count - apps.length) }, () => startApp(env)))),
    );
}

async function run(target: Target): Promise<Result> {
  const { driver } = target;
  const namespace = await driver.namespace();
  const env = {
    ...namespace,
    ...target.env,
    KW_MASTER: MasterKey.generate().exportText(),
    KW_SYNC_MS: String(POLL_MS),
    KW_REPORT_APPLIED: '1',
    // Back-to-back rotations: lift the bounded keyring's limit.
    KW_MAX_RETIRING: '1000000',
  };
  const apps: App[] = [];
  try {
    await startMany(env, 3, apps);
    const rotate3 = await rotations(apps, N3);
    const revoke3 = await revocations(apps, N3, '3');
    await startMany(env, 10, apps);
    const rotate10 = await rotations(apps, N10);
    const revoke10 = await revocations(apps, N10, '10');
    await Promise.all(apps.splice(3).map((a) => a.close()));

    let deaf: Series | undefined;
    if (driver.feed) {
      const name = `kwbenchdeaf${target.key}`;
      const cut = await startApp({ ...env, ...driver.feed.env(name, env) });
      apps.push(cut);
      if ((await driver.feed.drop(name, env)) < 1)
        throw new Error(`${target.key}: no feed connection to cut`);
      deaf = { lags: [], missing: 0 };
      for (let i = 0; i < DEAF_ROTATIONS; i++) {
        const { generation, startedAt } = await apps[0]!.call<{ generation: number; startedAt: number }>(
          'rotate',
        );
        const last = await appliedEverywhere([cut], keyringChange(generation), 3 * POLL_MS);
        if (last === undefined) deaf.missing++;
        else deaf.lags.push(last - startedAt);
        // Spread the changes over the poll cycle, so the lags sample the whole interval.
        await delay(Math.random() * POLL_MS);
      }
    }

    // One poll's store work: the generation key alone vs the whole document (+ JSON.parse).
    const store = driver.openStore(namespace);
    const doc = (await store.get(KEYRING_KEY)) ?? '';
    const time = async (fn: () => Promise<unknown>) => {
      for (let i = 0; i < 100; i++) await fn();
      const start = performance.now();
      for (let i = 0; i < 1000; i++) await fn();
      return ((performance.now() - start) / 1000) * 1000;
    };
    await time(() => store.get(KEYRING_GENERATION_KEY)); // warm-up (connections, caches)
    const pollUs = {
      generation: await time(() => store.get(KEYRING_GENERATION_KEY)),
      document: await time(async () => JSON.parse((await store.get(KEYRING_KEY)) ?? 'null')),
      docKiB: doc.length / 1024,
      keys: (JSON.parse(doc) as { keys: unknown[] }).keys.length,
    };
    await store.close();

    let failover: Result['failover'];
    if (target.killPrimary) {
      const writer = apps[1]!;
      const t0 = sharedNow();
      await target.killPrimary(namespace);
      const codes = new Set<string>();
      let attempts = 0;
      const deadline = Date.now() + 60_000;
      for (;;) {
        attempts++;
        try {
          const { committedAt } = await writer.call<{ committedAt: number }>('revokeToken', {
            jti: `gap-${attempts}`,
            until: Date.now() + 600_000,
          });
          failover = { gapMs: committedAt - t0 - (target.gapOffsetMs ?? 0), attempts, codes: [...codes] };
          break;
        } catch (err) {
          codes.add((err as { code?: string }).code ?? String(err));
          if (Date.now() > deadline) throw new Error(`${target.key}: no write committed within 60 s`);
          await delay(20);
        }
      }
    }
    return {
      key: target.key,
      rotate3,
      revoke3,
      rotate10,
      revoke10,
      ...(deaf ? { deaf } : {}),
      pollUs,
      ...(failover ? { failover } : {}),
    };
  } finally {
    await Promise.all(apps.map((a) => a.close()));
  }
}

const f = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '—');
function cell(s: Series | undefined): string {
  if (!s) return '—';
  const sorted = [...s.lags].sort((a, b) => a - b);
  const miss = s.missing ? ` (${s.missing} missing)` : '';
  return `${f(percentile(sorted, 50))} / ${f(percentile(sorted, 99))}${miss}`;
}

async function main(): Promise<void> {
  const wanted = (process.env.BENCH_DRIVERS ?? Object.keys(targets).join(','))
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean);
  const results: Result[] = [];
  for (const key of wanted) {
    const t = targets[key];
    if (!t) throw new Error(`unknown driver ${key} (known: ${Object.keys(targets).join(', ')})`);
    if (!t.available()) {
      if (process.env.BENCH_DRIVERS) throw new Error(`${key}: its tools are not on this machine`);
      console.error(`${key}: skipped (tools missing)`);
      continue;
    }
    const started = Date.now();
    const target = await t.make();
    try {
      results.push(await run(target));
    } finally {
      await target.stop();
    }
    console.error(`${key}: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }

  const cols = results.map((r) => r.key);
  const line = (name: string, cells: string[]) => `| ${name} | ${cells.join(' | ')} |`;
  console.log(
    `sync propagation, ms from the change until every instance applied it (p50 / p99); poll every ${POLL_MS} ms`,
  );
  console.log(line('', cols));
  console.log(
    line(
      '---',
      cols.map(() => '---'),
    ),
  );
  console.log(
    line(
      `rotate, 3 instances (n=${N3})`,
      results.map((r) => cell(r.rotate3)),
    ),
  );
  console.log(
    line(
      `revoke jti, 3 instances (n=${N3})`,
      results.map((r) => cell(r.revoke3)),
    ),
  );
  console.log(
    line(
      `rotate, 10 instances (n=${N10})`,
      results.map((r) => cell(r.rotate10)),
    ),
  );
  console.log(
    line(
      `revoke jti, 10 instances (n=${N10})`,
      results.map((r) => cell(r.revoke10)),
    ),
  );
  // A cut cluster subscriber is replaced by ioredis itself (no autoResubscribe: false there).
  console.log(
    line(
      `rotate, feed cut: poll only, cluster resubscribes (n=${DEAF_ROTATIONS})`,
      results.map((r) => cell(r.deaf)),
    ),
  );
  console.log(
    line(
      'poll: generation key / whole document (µs)',
      results.map((r) => `${r.pollUs.generation.toFixed(0)} / ${r.pollUs.document.toFixed(0)}`),
    ),
  );
  console.log(
    line(
      'document at the end (KiB, keys)',
      results.map((r) => `${r.pollUs.docKiB.toFixed(1)}, ${r.pollUs.keys}`),
    ),
  );
  console.log(
    line(
      'failover gap: kill → first committed revoke (ms)',
      results.map((r) =>
        r.failover
          ? `${r.failover.gapMs.toFixed(0)} (${r.failover.attempts} attempts${r.failover.codes.length ? `, ${r.failover.codes.join(', ')}` : ''})`
          : '—',
      ),
    ),
  );
  if (results.some((r) => r.key === 'postgres'))
    console.log(
      `PostgreSQL: restarted ${PG_DOWN_MS} ms after the crash; those ${PG_DOWN_MS} ms are subtracted.`,
    );
}

await main();
