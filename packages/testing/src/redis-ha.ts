import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from './tools.js';

/**
 * Throwaway Redis topologies for tests: a Redis Cluster (masters, optionally one replica each) and
 * a master + replica watched by three sentinels, each server a child process on its own port. Ports
 * come from `KEYWARD_TEST_PORTS` (`from-to`, e.g. `7100-7199`; a cluster also uses each port +10000
 * for its bus) when set, else any free port.
 */

/** One server of a throwaway topology. */
export interface RedisNode {
  readonly port: number;
  readonly process: ChildProcess;
}

let nextInRange: number | undefined;

async function isFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free port: the next one of `KEYWARD_TEST_PORTS` (and its +10000 with `bus`), or any. */
export async function testPort(bus = false): Promise<number> {
  const range = /^(\d+)-(\d+)$/.exec(process.env.KEYWARD_TEST_PORTS ?? '');
  if (!range) return bus ? freeBusPort() : freePort();
  const from = Number(range[1]);
  const to = Number(range[2]);
  for (let port = nextInRange ?? from; port <= to; port++) {
    if ((await isFree(port)) && (!bus || (await isFree(port + 10000)))) {
      nextInRange = port + 1;
      return port;
    }
  }
  throw new Error(`no free port left in KEYWARD_TEST_PORTS=${range[0]}`);
}

async function freeBusPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + 10000 < 65536 && (await isFree(port + 10000))) return port;
  }
}

function redisServer(args: string[]): ChildProcess {
  return spawn('redis-server', args, { stdio: 'ignore' });
}

/** An admin client on `port` that never retries (for probes and the tests' own checks). */
export function adminClient(port: number): Redis {
  const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  return client;
}

/** Runs `fn` on a fresh admin connection to `port`, then closes it. */
export async function withClient<T>(port: number, fn: (client: Redis) => Promise<T>): Promise<T> {
  const client = adminClient(port);
  try {
    await client.connect();
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

/** Calls `ok` until it resolves `true` (errors count as not yet), or throws after `timeoutMs`. */
export async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await ok()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: not reached in time`);
    await delay(50);
  }
}

const COMMON = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];

/** A running throwaway Redis Cluster. */
export interface TestCluster {
  readonly nodes: RedisNode[];
  /** `host:port` of every node, as `KEYWARD_REDIS_CLUSTER` takes them. */
  readonly seeds: string;
  /** The port of the master that serves `slot` now. */
  masterOf(slot: number): Promise<number>;
  /** `CLUSTER KEYSLOT key`. */
  keyslot(key: string): Promise<number>;
  /** Kills every node and removes its files. */
  stop(): Promise<void>;
}

/**
 * Starts `masters` cluster masters with `replicas` replicas each (`redis-cli --cluster create
 * --cluster-replicas`), a node timeout of `nodeTimeoutMs` (default 1 s: how long a killed master
 * stays down before its replica takes over), and waits until every node reports `cluster_state:ok`
 * and every replica is in sync with its master (so a killed master can fail over at once).
 */
export async function startCluster(masters = 3, replicas = 0, nodeTimeoutMs = 1000): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'keyward-cluster-'));
  const nodes: RedisNode[] = [];
  const stop = async () => {
    await Promise.all(
      nodes.map(async (node) => {
        if (node.process.exitCode !== null || node.process.signalCode !== null) return;
        const exited = new Promise((resolve) => node.process.once('exit', resolve));
        node.process.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await testPort(true);
      const nodeDir = join(dir, String(i));
      mkdirSync(nodeDir, { recursive: true });
      const child = redisServer([
        '--port',
        String(port),
        ...COMMON,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(nodeDir, 'nodes.conf'),
        '--cluster-node-timeout',
        String(nodeTimeoutMs),
        '--cluster-replica-validity-factor',
        '0',
        '--dir',
        nodeDir,
      ]);
      nodes.push({ port, process: child });
    }
    for (const { port } of nodes)
      await until('cluster node up', () => withClient(port, async (c) => (await c.ping()) === 'PONG'));
    const created = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { encoding: 'utf8' },
    );
    if (created.status !== 0) throw new Error(`cluster create failed: ${created.stdout}${created.stderr}`);
    for (const { port } of nodes) {
      await until('cluster ok', () =>
        withClient(port, async (c) => {
          if (!/cluster_state:ok/.test(await c.cluster('INFO'))) return false;
          const info = await c.info('replication');
          return /role:master/.test(info) || /master_link_status:up/.test(info);
        }),
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const first = nodes[0]!.port;
  return {
    nodes,
    seeds: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    keyslot: (key) => withClient(first, async (c) => Number(await c.cluster('KEYSLOT', key))),
    async masterOf(slot) {
      // Ask a live node: the killed one may be the first.
      for (const node of nodes) {
        if (node.process.exitCode !== null || node.process.signalCode !== null) continue;
        const text = await withClient(node.port, (c) => c.cluster('NODES') as Promise<string>).catch(
          () => '',
        );
        for (const line of text.split('\n')) {
          const [, address, flags, , , , , state, ...slots] = line.split(' ');
          if (!flags?.includes('master') || flags.includes('fail') || state !== 'connected') continue;
          const owns = slots.some((range) => {
            const [from, to = from] = range.split('-').map(Number);
            return from !== undefined && to !== undefined && slot >= from && slot <= to;
          });
          if (owns && address) return Number(address.split('@')[0]!.split(':')[1]);
        }
        if (text) break;
      }
      throw new Error(`no master owns slot ${slot}`);
    },
    stop,
  };
}

/** A running master + replica + three sentinels. */
export interface TestSentinels {
  readonly master: RedisNode;
  readonly replica: RedisNode;
  readonly sentinels: RedisNode[];
  /** `host:port` of the sentinels, as `KEYWARD_REDIS_SENTINELS` takes them. */
  readonly seeds: string;
  /** The name the sentinels monitor. */
  readonly name: string;
  /** The port of the master the sentinels report now. */
  currentMaster(): Promise<number>;
  /** Kills every server and removes the files. */
  stop(): Promise<void>;
}

/**
 * Starts a master, one replica of it and three sentinels (`redis-server --sentinel`, quorum 2,
 * `down-after-milliseconds` 1000, `failover-timeout` 5000), and waits until the replica is in sync
 * and every sentinel knows the replica and the other sentinels.
 */
export async function startSentinels(name = 'keyward'): Promise<TestSentinels> {
  const dir = mkdtempSync(join(tmpdir(), 'keyward-sentinel-'));
  const all: RedisNode[] = [];
  const stop = async () => {
    await Promise.all(
      all.map(async (node) => {
        if (node.process.exitCode !== null || node.process.signalCode !== null) return;
        const exited = new Promise((resolve) => node.process.once('exit', resolve));
        node.process.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const masterPort = await testPort();
    // --dir: a full resync writes an RDB file even with --save ''.
    const master = {
      port: masterPort,
      process: redisServer(['--port', String(masterPort), ...COMMON, '--dir', mkdtempSync(join(dir, 'm-'))]),
    };
    all.push(master);
    const replicaPort = await testPort();
    const replica = {
      port: replicaPort,
      process: redisServer([
        '--port',
        String(replicaPort),
        ...COMMON,
        '--dir',
        mkdtempSync(join(dir, 'r-')),
        '--replicaof',
        '127.0.0.1',
        String(masterPort),
      ]),
    };
    all.push(replica);
    await until('replica in sync', () =>
      withClient(replicaPort, async (c) => /master_link_status:up/.test(await c.info('replication'))),
    );
    const sentinels: RedisNode[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await testPort();
      const config = join(dir, `sentinel-${i}.conf`);
      writeFileSync(
        config,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      const node = { port, process: redisServer([config, '--sentinel']) };
      sentinels.push(node);
      all.push(node);
    }
    for (const { port } of sentinels) {
      await until('sentinel ready', () =>
        withClient(port, async (c) => {
          const [info] = (await c.call('SENTINEL', 'MASTERS')) as string[][];
          const field = (k: string) => info?.[info.indexOf(k) + 1];
          return field('num-slaves') === '1' && field('num-other-sentinels') === '2';
        }),
      );
    }
    return {
      master,
      replica,
      sentinels,
      name,
      seeds: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      async currentMaster() {
        for (const s of sentinels) {
          const reply = await withClient(
            s.port,
            (c) => c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as Promise<string[]>,
          ).catch(() => undefined);
          if (reply?.[1]) return Number(reply[1]);
        }
        throw new Error('no sentinel answers');
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
