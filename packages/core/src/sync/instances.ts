import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { KeywardError } from '../errors.js';
import { KEYRING_GENERATION_KEY } from '../keys/keyring-store.js';
import { storeEntries } from '../store/entries.js';
import type { Store } from '../store/types.js';

/** The store collection of instance heartbeats: member `<instance id>`. */
export const INSTANCES_COLLECTION = 'instances/';

/** Default heartbeat interval of an instance, in ms. */
export const DEFAULT_HEARTBEAT_MS = 10_000;

/** A heartbeat record lives this many intervals; an instance that stops beating drops out by itself. */
const TTL_INTERVALS = 3;
/** A record whose last beat is older than this many intervals is reported `stale`. */
const STALE_INTERVALS = 2;

/**
 * What an instance writes into the store on each heartbeat (`instances/<id>`). No secret, key or
 * token: only where it runs and what it has applied.
 */
export interface InstanceRecord {
  /** Random id of this process (base64url), made at start-up. */
  id: string;
  /** `os.hostname()`. */
  host: string;
  pid: number;
  /** Version of `@keyward/core` this instance runs. */
  version: string;
  /** Keyring generation this instance has applied. */
  keyringGeneration: number;
  /** Revocation generation this instance has applied in full. */
  revocationGeneration: number;
  /** This clock minus the store's in ms, as the scheduler last measured it (`null`: not measured). */
  clockOffsetMs: number | null;
  /** End-to-end lag of the last announcement this instance applied, in ms (`null`: none yet). */
  syncLagMs: number | null;
  /** True while this instance's last contact with the store failed (serving its snapshot). */
  syncStale: boolean;
  /** Epoch ms (this instance's clock). */
  startedAt: number;
  /** Epoch ms of this heartbeat (this instance's clock). */
  lastSeenAt: number;
  /** The instance's heartbeat interval in ms: readers derive staleness from it. */
  heartbeatMs: number;
}

/**
 * An instance as an operator sees it: `stale` when its last heartbeat is older than two of its
 * intervals (it probably died; the record expires after three), `behind` when it is alive but
 * has not applied the store's current keyring generation, else `current`.
 */
export type InstanceState = 'current' | 'behind' | 'stale';

/** One entry of {@link InstancesReport}. */
export interface InstanceView extends InstanceRecord {
  state: InstanceState;
}

/** What {@link listInstances} returns. */
export interface InstancesReport {
  /** The store's keyring generation (`keyring/generation`), `null` when it holds none. */
  generation: number | null;
  /** Every registered instance, ordered by id. */
  instances: InstanceView[];
  /** How many instances are in each state. */
  counts: Record<InstanceState, number>;
}

function isRecord(value: unknown): value is InstanceRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.id === 'string' &&
    typeof r.host === 'string' &&
    typeof r.pid === 'number' &&
    typeof r.version === 'string' &&
    typeof r.keyringGeneration === 'number' &&
    typeof r.revocationGeneration === 'number' &&
    typeof r.startedAt === 'number' &&
    typeof r.lastSeenAt === 'number' &&
    typeof r.heartbeatMs === 'number'
  );
}

/**
 * Lists the instances registered in `store` (one `list` of the `instances/` collection, O(instances),
 * plus one read of the keyring generation) and classifies each one against `now`.
 * Malformed records are skipped.
 *
 * @example
 * ```ts
 * const { generation, counts } = await listInstances(kw.store)
 * if (counts.behind > 0) console.log(`not every instance is on generation ${generation} yet`)
 * ```
 */
export async function listInstances(
  store: Store,
  options: { now?: () => number } = {},
): Promise<InstancesReport> {
  const now = (options.now ?? Date.now)();
  const rawGeneration = await store.get(KEYRING_GENERATION_KEY);
  const parsed = rawGeneration === null ? Number.NaN : Number(rawGeneration);
  const generation = Number.isSafeInteger(parsed) ? parsed : null;
  const records: InstanceRecord[] = [];
  for await (const { value } of storeEntries(store, 'list', INSTANCES_COLLECTION)) {
    try {
      const record: unknown = JSON.parse(value);
      if (isRecord(record)) records.push(record);
    } catch {
      // not a heartbeat record: skipped
    }
  }
  const counts: Record<InstanceState, number> = { current: 0, behind: 0, stale: 0 };
  const instances = records.map((record): InstanceView => {
    const state: InstanceState =
      now - record.lastSeenAt > STALE_INTERVALS * record.heartbeatMs
        ? 'stale'
        : generation !== null && record.keyringGeneration < generation
          ? 'behind'
          : 'current';
    counts[state]++;
    return { ...record, state };
  });
  return { generation, instances, counts };
}

/** What a heartbeat reads from its instance. */
export interface HeartbeatSource {
  keyringGeneration(): number;
  revocationGeneration(): number;
  clockOffsetMs(): number | undefined;
  syncLagMs(): number | undefined;
  syncStale(): boolean;
}

/** Options of {@link createInstanceHeartbeat}. */
export interface InstanceHeartbeatOptions {
  store: Store;
  source: HeartbeatSource;
  /** Interval in ms. */
  intervalMs: number;
  now: () => number;
  /** Called after each beat with the listing it made (metrics). */
  onListed?: (report: InstancesReport) => void;
  onError?: (error: KeywardError) => void;
}

/** The heartbeat of one instance (see {@link createInstanceHeartbeat}). */
export interface InstanceHeartbeat {
  readonly id: string;
  /**
   * Writes the record now (and lists the collection for `onListed`). While a beat is running, one
   * more follows it. Never throws.
   */
  beat(): Promise<void>;
  /** Starts the timer (unref'd) after a first beat. */
  start(): Promise<void>;
  /** Stops the timer and deletes this instance's record. Never throws. */
  stop(): Promise<void>;
}

/** Version of @keyward/core (from its package.json, next to `src/` and `dist/`). */
export const KEYWARD_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
})();

/**
 * Validates the `instanceHeartbeatMs` option: `false` (off), or an interval of at least 100 ms.
 *
 * @throws KeywardError `config_invalid` otherwise.
 */
export function resolveHeartbeatMs(value: number | false | undefined): number | false {
  if (value === undefined) return DEFAULT_HEARTBEAT_MS;
  if (value === false) return false;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 100)
    throw new KeywardError('config_invalid', 'instanceHeartbeatMs must be false or at least 100 ms', {
      details: { option: 'instanceHeartbeatMs' },
    });
  return Math.floor(value);
}

/**
 * Registers this instance in `instances/<id>` every `intervalMs`, with a TTL of three intervals,
 * from its own timer (never on a request path).
 */
export function createInstanceHeartbeat(options: InstanceHeartbeatOptions): InstanceHeartbeat {
  const { store, source, intervalMs, now } = options;
  const id = randomBytes(9).toString('base64url');
  const key = `${INSTANCES_COLLECTION}${id}`;
  const startedAt = now();
  const host = hostname();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;

  const fail = (err: unknown) => {
    if (err instanceof KeywardError) options.onError?.(err);
    else options.onError?.(new KeywardError('store_error', 'instance heartbeat failed'));
  };

  async function write(): Promise<void> {
    const record: InstanceRecord = {
      id,
      host,
      pid: process.pid,
      version: KEYWARD_VERSION,
      keyringGeneration: source.keyringGeneration(),
      revocationGeneration: source.revocationGeneration(),
      clockOffsetMs: source.clockOffsetMs() ?? null,
      syncLagMs: source.syncLagMs() ?? null,
      syncStale: source.syncStale(),
      startedAt,
      lastSeenAt: now(),
      heartbeatMs: intervalMs,
    };
    await store.set(key, JSON.stringify(record), { ttlMs: TTL_INTERVALS * intervalMs });
    if (options.onListed) options.onListed(await listInstances(store, { now }));
  }

  const beat = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    // One beat at a time (a slow store never piles up writes); a beat asked for meanwhile runs
    // once after it, so a change applied during a write is not left out until the next interval.
    if (running) {
      queued ??= running.then(() => {
        queued = undefined;
        return beat();
      });
      return queued;
    }
    running = write()
      .catch(fail)
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  return {
    id,
    beat,
    async start() {
      await beat();
      if (stopped || timer) return;
      timer = setInterval(() => void beat(), intervalMs);
      timer.unref();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearInterval(timer);
      await running;
      await store.delete(key).catch(() => undefined);
    },
  };
}
