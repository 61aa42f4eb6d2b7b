import { randomUUID } from 'node:crypto';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { KeywardError } from '../errors.js';
import {
  checkCollection,
  checkHandler,
  checkIncrement,
  checkKey,
  checkStoreKey,
  checkTtl,
  checkValue,
  closedError,
  collectionOf,
  decodeKeyCursor,
  deliver,
  encodeKeyCursor,
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
   * Prefix of every key and channel. Default `keyward:`. The driver adds its own hash tags (one
   * per collection, standalone key and lock), so keys spread over a cluster's slots. A prefix
   * that contains a `{hash tag}` itself still works: Redis hashes the first tag, so every key then
   * sits on one slot (the former default `{keyward}:`; no longer needed on a cluster).
   */
  prefix?: string;
  /**
   * How long one Redis command may take before it fails with `store_unavailable`, in ms. Default
   * 5000. A lower value (e.g. 1000) makes writes fail fast while a primary is down or a Sentinel
   * or Cluster failover is under way; verification never waits on Redis (it reads the in-memory
   * keyring). `redisOptions.commandTimeout` still wins when given. Env: `KEYWARD_STORE_TIMEOUT_MS`.
   */
  commandTimeoutMs?: number;
}

/** Fail fast while the server is down, but keep reconnecting in the background (ioredis default). */
const FAIL_FAST: RedisOptions = { maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 5000 };
/** SCAN calls one `scan` page may make before returning fewer entries than asked. */
const MAX_SCANS_PER_PAGE = 16;
/** Most members one `list` page returns (the script unpacks the ids onto the Lua stack). */
const MAX_LIST_PAGE = 1000;
/** Expired members one `list` call removes from its collection's index before reading. */
const PRUNE_PER_LIST = 100;

function configError(message: string, option: string): KeywardError {
  return new KeywardError('config_invalid', `createRedisStore: ${message}`, { details: { option } });
}

function connect(options: RedisStoreOptions): Redis | Cluster {
  const timeout = options.commandTimeoutMs;
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 1 || timeout > 600_000))
    throw configError(
      'commandTimeoutMs must be a whole number of ms between 1 and 600000',
      'commandTimeoutMs',
    );
  const redisOptions: RedisOptions = {
    ...FAIL_FAST,
    ...(timeout === undefined ? {} : { commandTimeout: timeout, connectTimeout: Math.min(timeout, 2000) }),
    ...options.redisOptions,
  };
  const given = (['client', 'url', 'sentinels', 'cluster'] as const).filter((k) => options[k] !== undefined);
  if (given.length > 1) throw configError(`give only one of ${given.join(', ')}`, given.join(','));
  try {
    if (options.client) return options.client;
    if (options.cluster) {
      return new Cluster(options.cluster.nodes, { ...options.cluster.options, redisOptions });
    }
    if (options.sentinels) {
      // failoverDetector: subscribe to the sentinels' +switch-master and reconnect to the new
      // master at once (duplicate() copies it, so the pub/sub connection follows too).
      return new Redis({
        failoverDetector: true,
        ...redisOptions,
        sentinels: options.sentinels.nodes,
        name: options.sentinels.name,
      });
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

function isCluster(client: Redis | Cluster): client is Cluster {
  return client.isCluster;
}

/** The master nodes of a cluster in a stable order (by address), so a scan cursor names one. */
function sortedMasters(cluster: Cluster): Redis[] {
  const address = (node: Redis) => `${node.options.host}:${node.options.port}`;
  return cluster
    .nodes('master')
    .sort((a, b) => (address(a) < address(b) ? -1 : address(a) > address(b) ? 1 : 0));
}

/** Parses a `scan` cursor: a SCAN cursor, or `<master index>.<SCAN cursor>` on a cluster. */
function parseScanCursor(cursor: unknown): { node: number; cursor: string } {
  if (cursor === undefined) return { node: 0, cursor: '0' };
  const match = typeof cursor === 'string' ? /^(?:(\d{1,4})\.)?(\d{1,20})$/.exec(cursor) : null;
  if (match === null || match[2] === undefined) {
    throw new KeywardError('invalid_argument', 'cursor must come from a previous scan page', {
      details: { option: 'cursor' },
    });
  }
  return { node: Number(match[1] ?? 0), cursor: match[2] };
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
 * Read-modify-writes and locks are Lua scripts. Each collection keeps an index (sorted sets of its
 * member ids and of their expiry times) written in the same scripts as its records, so `list`
 * reads only that collection; only `scan` uses SCAN (never KEYS). Pub/sub uses a second
 * connection opened on the first subscribe. Layout: `docs/architecture.md`, "Storage seam".
 *
 * @example
 * ```ts
 * const store = createRedisStore({ url: process.env.REDIS_URL })
 * await store.set('revoked:abc', '1', { ttlMs: 15 * 60_000 })
 * const off = await store.subscribe('keys', (msg) => console.log(msg))
 * ```
 */
export function createRedisStore(options: RedisStoreOptions = {}): Store {
  const prefix = options.prefix ?? 'keyward:';
  if (typeof prefix !== 'string' || prefix.length === 0)
    throw configError('prefix must be a non-empty string', 'prefix');
  const client = connect(options);
  const owned = options.client === undefined;
  // Errors surface on the commands that fail; an unhandled 'error' event would only add log noise.
  if (owned) client.on('error', () => {});

  // A member of collection C is `k:{C}id`, next to its index `i:{C}` and expiry index `x:{C}` on
  // one slot; a standalone key K is `k:{K}`. Removing the braces gives back the store key.
  const recordPrefix = (collection: string) => `${prefix}k:{${collection}}`;
  const dataKey = (key: string) => {
    const member = collectionOf(key);
    return member === undefined ? `${prefix}k:{${key}}` : recordPrefix(member.collection) + member.id;
  };
  const indexKeys = (collection: string) => [`${prefix}i:{${collection}}`, `${prefix}x:{${collection}}`];
  const dataKeyStart = `${prefix}k:{`;
  const storeKeyOf = (fullKey: string): string => {
    const body = fullKey.slice(dataKeyStart.length);
    const slash = body.lastIndexOf('/');
    if (slash !== -1 && body[slash + 1] === '}') return body.slice(0, slash + 1) + body.slice(slash + 2);
    return body.endsWith('}') ? body.slice(0, -1) : body;
  };
  const lockKey = (name: string) => `${prefix}lock:{${name}}`;
  const fenceKey = (name: string) => `${prefix}fence:{${name}}`;
  const channelKey = (channel: string) => `${prefix}c:${channel}`;
  const subscribers = new Map<string, Set<StoreMessageHandler>>();
  const subscribing = new Map<string, Promise<unknown>>();
  let subscriber: Promise<Redis | Cluster> | undefined;
  let closed = false;

  function memberKeys(key: string, collection: string): string[] {
    return [dataKey(key), ...indexKeys(collection)];
  }

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
      checkStoreKey(key);
      return run('get', () => client.get(dataKey(key)));
    },
    async set(key, value, setOptions) {
      checkStoreKey(key);
      checkValue(value);
      const ttl = ttlOf(setOptions);
      const member = collectionOf(key);
      await run('set', () => {
        if (member !== undefined)
          return runScript(client, SCRIPTS.memberSet, memberKeys(key, member.collection), [
            member.id,
            value,
            ttl ?? '',
          ]);
        return ttl === undefined
          ? client.set(dataKey(key), value)
          : client.set(dataKey(key), value, 'PX', ttl);
      });
    },
    async delete(key) {
      checkStoreKey(key);
      const member = collectionOf(key);
      return run('delete', async () => {
        const removed =
          member === undefined
            ? await client.del(dataKey(key))
            : await runScript(client, SCRIPTS.memberDelete, memberKeys(key, member.collection), [member.id]);
        return removed === 1;
      });
    },
    async compareAndSet(key, expected, value, setOptions) {
      checkStoreKey(key);
      if (expected !== null) checkValue(expected, 'expected');
      checkValue(value);
      const ttl = ttlOf(setOptions);
      const args = [expected === null ? '0' : '1', expected ?? '', value, ttl ?? ''];
      const member = collectionOf(key);
      return run('compareAndSet', async () => {
        const written =
          member === undefined
            ? await runScript(client, SCRIPTS.compareAndSet, [dataKey(key)], args)
            : await runScript(client, SCRIPTS.memberCompareAndSet, memberKeys(key, member.collection), [
                member.id,
                ...args,
              ]);
        return written === 1;
      });
    },
    async take(key) {
      checkStoreKey(key);
      const member = collectionOf(key);
      return run('take', async () => {
        const value =
          member === undefined
            ? await runScript(client, SCRIPTS.take, [dataKey(key)], [])
            : await runScript(client, SCRIPTS.memberTake, memberKeys(key, member.collection), [member.id]);
        return value as string | null;
      });
    },
    async list(collection, listOptions = {}) {
      checkCollection(collection);
      const limit = Math.min(limitOf(listOptions.limit), MAX_LIST_PAGE);
      const after = decodeKeyCursor(listOptions.cursor) ?? '';
      return run('list', async () => {
        const [ids, values] = (await runScript(client, SCRIPTS.list, indexKeys(collection), [
          recordPrefix(collection),
          after,
          limit,
          PRUNE_PER_LIST,
        ])) as [string[], (string | null)[]];
        const entries: StoreEntry[] = [];
        ids.forEach((id, i) => {
          const value = values[i];
          if (typeof value === 'string') entries.push({ key: collection + id, value });
        });
        const last = ids.at(-1);
        return { entries, cursor: ids.length === limit && last !== undefined ? encodeKeyCursor(last) : null };
      });
    },
    async scan(keyPrefix, listOptions = {}) {
      checkValue(keyPrefix, 'prefix');
      const limit = limitOf(listOptions.limit);
      const start = parseScanCursor(listOptions.cursor);
      // Every store key starting with `keyPrefix` has a Redis key starting with this (see dataKey);
      // the few others it also matches are filtered out below.
      const slash = keyPrefix.lastIndexOf('/');
      const match = `${escapeGlob(dataKeyStart + (slash === -1 ? keyPrefix : keyPrefix.slice(0, slash + 1)))}*`;
      return run('scan', async () => {
        // SCAN may return a key twice while Redis resizes its table; dedupe within the page.
        const page = new Map<string, StoreEntry>();
        let { node, cursor } = start;
        const masters = isCluster(client) ? sortedMasters(client) : undefined;
        for (let scans = 0; scans < MAX_SCANS_PER_PAGE && page.size < limit; scans++) {
          let keys: string[];
          let values: (string | null)[];
          if (masters === undefined) {
            [cursor, keys, values] = (await runScript(client, SCRIPTS.scan, [], [cursor, match, limit])) as [
              string,
              string[],
              (string | null)[],
            ];
          } else {
            const master = masters[node];
            if (master === undefined) {
              node = -1; // the cluster has fewer masters than when the walk began
              break;
            }
            [cursor, keys] = await master.scan(cursor, 'MATCH', match, 'COUNT', limit);
            // Keys of one page sit on many slots: no MGET; the cluster client routes each GET.
            values = await Promise.all(keys.map((k) => client.get(k)));
          }
          keys.forEach((fullKey, i) => {
            const value = values[i];
            const key = storeKeyOf(fullKey);
            if (typeof value === 'string' && key.startsWith(keyPrefix)) page.set(fullKey, { key, value });
          });
          if (cursor === '0') {
            if (masters === undefined || node + 1 >= masters.length) {
              node = -1;
              break;
            }
            node++;
          }
        }
        const next = node === -1 ? null : masters === undefined ? cursor : `${node}.${cursor}`;
        return { entries: [...page.values()], cursor: next };
      });
    },
    async increment(key, by = 1, incrementOptions) {
      checkStoreKey(key);
      const step = checkIncrement(by);
      const ttl = ttlOf(incrementOptions);
      const member = collectionOf(key);
      return run('increment', async () => {
        if (member !== undefined)
          return Number(
            await runScript(client, SCRIPTS.memberIncrement, memberKeys(key, member.collection), [
              member.id,
              step,
              ttl ?? '',
            ]),
          );
        if (ttl === undefined) return client.incrby(dataKey(key), step);
        return Number(await runScript(client, SCRIPTS.incrementWithTtl, [dataKey(key)], [step, ttl]));
      });
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
