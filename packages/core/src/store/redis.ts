import { randomUUID } from 'node:crypto';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { KeywardError } from '../errors.js';
import {
  checkHandler,
  checkIncrement,
  checkKey,
  checkTtl,
  checkValue,
  closedError,
  deliver,
  limitOf,
  ttlOf,
} from './arguments.js';
import { escapeGlob, redisError, runScript, SCRIPTS } from './redis-scripts.js';
import type { Store, StoreEntry, StoreLock, StoreMessageHandler } from './types.js';

/** Options of {@link createRedisStore}. Give at most one of `client`, `url`, `sentinels`, `cluster`. */
export interface RedisStoreOptions {
  /** `redis://[:password@]host:port/db` or `rediss://…`. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** An existing ioredis client or cluster. The store never closes it. */
  client?: Redis | Cluster;
  /** Extra ioredis options for a client the store creates (override the fail-fast defaults). */
  redisOptions?: RedisOptions;
  /** Connect through Redis Sentinel to the master called `name`. */
  sentinels?: { nodes: Array<{ host: string; port: number }>; name: string };
  /** Connect to a Redis Cluster. */
  cluster?: { nodes: Array<string | { host: string; port: number }>; options?: ClusterOptions };
  /**
   * Prefix of every key and channel. Must contain a `{hash tag}` on a cluster so that the keys of
   * one Lua script share a slot. Default `{keyward}:`.
   */
  prefix?: string;
}

/** Fail fast while the server is down, but keep reconnecting in the background (ioredis default). */
const FAIL_FAST: RedisOptions = { maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 5000 };
/** SCAN calls one `list` page may make before returning fewer entries than asked. */
const MAX_SCANS_PER_PAGE = 16;

function configError(message: string, option: string): KeywardError {
  return new KeywardError('config_invalid', `createRedisStore: ${message}`, { details: { option } });
}

function hasHashTag(prefix: string): boolean {
  const open = prefix.indexOf('{');
  return open !== -1 && prefix.indexOf('}', open) > open + 1;
}

function connect(options: RedisStoreOptions): Redis | Cluster {
  const redisOptions = { ...FAIL_FAST, ...options.redisOptions };
  const given = (['client', 'url', 'sentinels', 'cluster'] as const).filter((k) => options[k] !== undefined);
  if (given.length > 1) throw configError(`give only one of ${given.join(', ')}`, given.join(','));
  try {
    if (options.client) return options.client;
    if (options.cluster) {
      return new Cluster(options.cluster.nodes, { ...options.cluster.options, redisOptions });
    }
    if (options.sentinels) {
      return new Redis({ ...redisOptions, sentinels: options.sentinels.nodes, name: options.sentinels.name });
    }
    return options.url === undefined ? new Redis(redisOptions) : new Redis(options.url, redisOptions);
  } catch (err) {
    // The URL may carry a password, so it is never echoed.
    throw new KeywardError('config_invalid', 'createRedisStore: the Redis connection options are invalid', {
      cause: err,
      details: { option: given[0] ?? 'redisOptions' },
    });
  }
}

async function disconnect(client: Redis | Cluster): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // fall through to a hard disconnect
    }
  }
  client.disconnect();
}

/**
 * A {@link Store} on Redis (ioredis: standalone, sentinel or cluster), the distributed driver.
 * Read-modify-writes and locks are Lua scripts; listing uses SCAN, never KEYS; pub/sub uses a
 * second connection opened on the first subscribe.
 *
 * @example
 * ```ts
 * const store = createRedisStore({ url: process.env.REDIS_URL })
 * await store.set('revoked:abc', '1', { ttlMs: 15 * 60_000 })
 * const off = await store.subscribe('keys', (msg) => console.log(msg))
 * ```
 */
export function createRedisStore(options: RedisStoreOptions = {}): Store {
  const prefix = options.prefix ?? '{keyward}:';
  if (typeof prefix !== 'string' || prefix.length === 0)
    throw configError('prefix must be a non-empty string', 'prefix');
  const isCluster = options.client ? options.client.isCluster : options.cluster !== undefined;
  if (isCluster && !hasHashTag(prefix)) {
    throw configError('prefix must contain a {hash tag} on a Redis Cluster, e.g. "{keyward}:"', 'prefix');
  }
  const client = connect(options);
  const owned = options.client === undefined;
  // Errors surface on the commands that fail; an unhandled 'error' event would only add log noise.
  if (owned) client.on('error', () => {});

  const dataKey = (key: string) => `${prefix}k:${key}`;
  const lockKey = (name: string) => `${prefix}lock:${name}`;
  const fenceKey = (name: string) => `${prefix}fence:${name}`;
  const channelKey = (channel: string) => `${prefix}c:${channel}`;
  const subscribers = new Map<string, Set<StoreMessageHandler>>();
  const subscribing = new Map<string, Promise<unknown>>();
  let subscriber: Promise<Redis | Cluster> | undefined;
  let closed = false;

  async function run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (closed) throw closedError('redis');
    try {
      return await fn();
    } catch (err) {
      throw redisError(err, operation);
    }
  }

  function makeLock(name: string, holder: string, token: number): StoreLock {
    return {
      name,
      token,
      async extend(ttlMs: number) {
        const ttl = checkTtl(ttlMs);
        return run(
          'lock.extend',
          async () => (await runScript(client, SCRIPTS.extendLock, [lockKey(name)], [holder, ttl])) === 1,
        );
      },
      release: async () =>
        run(
          'lock.release',
          async () => (await runScript(client, SCRIPTS.releaseLock, [lockKey(name)], [holder])) === 1,
        ),
      isHeld: async () => run('lock.isHeld', async () => (await client.get(lockKey(name))) === holder),
    };
  }

  async function openSubscriber(): Promise<Redis | Cluster> {
    const sub =
      client instanceof Cluster
        ? client.duplicate([], { lazyConnect: true })
        : client.duplicate({ lazyConnect: true });
    sub.on('error', () => {});
    sub.on('message', (channel: string, message: string) => {
      for (const handler of [...(subscribers.get(channel) ?? [])]) deliver(handler, message);
    });
    try {
      await sub.connect();
    } catch (err) {
      sub.disconnect();
      throw err;
    }
    return sub;
  }

  return {
    driver: 'redis',
    async get(key) {
      checkKey(key);
      return run('get', () => client.get(dataKey(key)));
    },
    async set(key, value, setOptions) {
      checkKey(key);
      checkValue(value);
      const ttl = ttlOf(setOptions);
      await run('set', () =>
        ttl === undefined ? client.set(dataKey(key), value) : client.set(dataKey(key), value, 'PX', ttl),
      );
    },
    async delete(key) {
      checkKey(key);
      return run('delete', async () => (await client.del(dataKey(key))) === 1);
    },
    async compareAndSet(key, expected, value, setOptions) {
      checkKey(key);
      if (expected !== null) checkValue(expected, 'expected');
      checkValue(value);
      const ttl = ttlOf(setOptions);
      const args = [expected === null ? '0' : '1', expected ?? '', value, ttl ?? ''];
      return run(
        'compareAndSet',
        async () => (await runScript(client, SCRIPTS.compareAndSet, [dataKey(key)], args)) === 1,
      );
    },
    async take(key) {
      checkKey(key);
      return run(
        'take',
        async () => (await runScript(client, SCRIPTS.take, [dataKey(key)], [])) as string | null,
      );
    },
    async list(userPrefix, listOptions = {}) {
      checkValue(userPrefix, 'prefix');
      const limit = limitOf(listOptions.limit);
      let cursor = listOptions.cursor ?? '0';
      if (typeof cursor !== 'string' || !/^\d+$/.test(cursor)) {
        throw new KeywardError('invalid_argument', 'cursor must come from a previous list page', {
          details: { option: 'cursor' },
        });
      }
      const match = `${escapeGlob(dataKey(userPrefix))}*`;
      const strip = dataKey('').length;
      return run('list', async () => {
        // SCAN may return a key twice while Redis resizes its table; dedupe within the page.
        const page = new Map<string, StoreEntry>();
        for (let scans = 0; scans < MAX_SCANS_PER_PAGE && page.size < limit; scans++) {
          const reply = (await runScript(client, SCRIPTS.scan, [dataKey('')], [cursor, match, limit])) as [
            string,
            string[],
            (string | null)[],
          ];
          const [next, keys, values] = reply;
          keys.forEach((fullKey, i) => {
            const value = values[i];
            if (typeof value === 'string') page.set(fullKey, { key: fullKey.slice(strip), value });
          });
          cursor = next;
          if (cursor === '0') break;
        }
        return { entries: [...page.values()], cursor: cursor === '0' ? null : cursor };
      });
    },
    async increment(key, by = 1) {
      checkKey(key);
      const step = checkIncrement(by);
      return run('increment', () => client.incrby(dataKey(key), step));
    },
    async acquireLock(name, ttlMs) {
      checkKey(name, 'name');
      const ttl = checkTtl(ttlMs);
      const holder = randomUUID();
      const token = await run('acquireLock', async () =>
        Number(await runScript(client, SCRIPTS.acquireLock, [lockKey(name), fenceKey(name)], [holder, ttl])),
      );
      return token === 0 ? null : makeLock(name, holder, token);
    },
    async publish(channel, message) {
      checkKey(channel, 'channel');
      checkValue(message, 'message');
      await run('publish', () => client.publish(channelKey(channel), message));
    },
    async subscribe(channel, handler) {
      checkKey(channel, 'channel');
      checkHandler(handler);
      const fullChannel = channelKey(channel);
      return run('subscribe', async () => {
        subscriber ??= openSubscriber();
        const sub = await subscriber.catch((err: unknown) => {
          subscriber = undefined;
          throw err;
        });
        let handlers = subscribers.get(fullChannel);
        if (handlers === undefined) {
          handlers = new Set();
          subscribers.set(fullChannel, handlers);
          subscribing.set(fullChannel, sub.subscribe(fullChannel));
        }
        // A second subscriber of a channel also waits for the server's SUBSCRIBE acknowledgement.
        try {
          await subscribing.get(fullChannel);
        } catch (err) {
          if (subscribers.get(fullChannel) === handlers) subscribers.delete(fullChannel);
          subscribing.delete(fullChannel);
          throw err;
        }
        const subscription: StoreMessageHandler = (message) => handler(message);
        handlers.add(subscription);
        const own = handlers;
        return async () => {
          own.delete(subscription);
          if (own.size > 0 || subscribers.get(fullChannel) !== own) return;
          subscribers.delete(fullChannel);
          subscribing.delete(fullChannel);
          if (!closed) await run('unsubscribe', () => sub.unsubscribe(fullChannel));
        };
      });
    },
    async ping() {
      return run('ping', async () => {
        const start = performance.now();
        await client.ping();
        return performance.now() - start;
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      subscribers.clear();
      const sub = subscriber;
      subscriber = undefined;
      await Promise.all([sub?.then(disconnect, () => {}), owned ? disconnect(client) : undefined]);
    },
    /** The server's clock (`TIME`), in epoch ms. */
    async time() {
      return run('time', async () => {
        const [seconds, micros] = await client.time();
        return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      });
    },
  };
}
