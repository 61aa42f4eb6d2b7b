import { KeywardError } from '../errors.js';
import type { Store } from '../store/types.js';
import type { KeyService } from './key-service.js';
import type { RotationAction } from './rotation-plan.js';

/** Options of {@link createRotationScheduler}. */
export interface RotationSchedulerOptions {
  /** How often each instance checks whether a rotation is due, in ms. Default 60 000. */
  intervalMs?: number;
  /**
   * TTL of the rotation lock, in ms. A holder paused longer than this loses the lock, and its
   * late write is refused by the fencing token (`lock_lost`). Default 30 000.
   */
  lockTtlMs?: number;
  /** Name of the store lock. Default `rotation`. */
  lockName?: string;
}

/** What the scheduler needs from the core: the store (for the lock) and the key service. */
export interface RotationSchedulerDeps {
  store: Store;
  service: Pick<KeyService, 'runSchedule'>;
  /** Called with every failed run (already a `KeywardError`); the scheduler keeps running. */
  onError?: (error: KeywardError) => void;
  /** Called after a run that committed actions. */
  onRotated?: (result: { actions: RotationAction[]; generation: number }) => void;
  /**
   * The core's clock (epoch ms), compared with the store's ({@link Store.time}) before each run.
   * Default `Date.now`.
   */
  now?: () => number;
  /**
   * Largest tolerated difference between this instance's clock and the store's, in ms (the
   * policy's `clockSkew`). While the measured offset exceeds it (plus half the round trip of the
   * measurement and 1 ms of rounding), a run changes nothing: no key is generated, activated or
   * retired. Absent: no check.
   */
  clockSkewMs?: number;
  /** Called with every measured clock offset (this instance's clock minus the store's, in ms). */
  onClockOffset?: (offsetMs: number) => void;
}

/** Outcome of one {@link RotationScheduler.tick}. */
export type RotationTickResult =
  /** Another instance holds the rotation lock. */
  | { status: 'busy' }
  /** Nothing was due, or another writer had already done it. */
  | { status: 'idle'; generation: number }
  /** This instance committed `actions`. */
  | { status: 'rotated'; actions: RotationAction[]; generation: number; fence: number }
  /**
   * This instance's clock differs from the store's by more than `clockSkew` (`offsetMs` = this
   * clock minus the store's): nothing was planned or written.
   */
  | { status: 'clock_offset'; offsetMs: number }
  | { status: 'failed'; error: KeywardError };

/** Runs the rotation plan periodically under a store lock, so with N instances exactly one acts. */
export interface RotationScheduler {
  /** Starts the periodic runs (the first after a random delay of up to one interval, capped at 5 s). Idempotent. */
  start(): void;
  /** Stops the periodic runs and waits for a run in flight. Idempotent. */
  stop(): Promise<void>;
  /** Runs once now: takes the lock, plans at the core's clock, applies, releases. Never throws. */
  tick(): Promise<RotationTickResult>;
  /** True between {@link RotationScheduler.start} and {@link RotationScheduler.stop}. */
  readonly running: boolean;
  /**
   * The last measured offset of this instance's clock against the store's, in ms (positive: this
   * clock is ahead); `undefined` before the first run or when the store has no `time()`.
   */
  readonly clockOffsetMs: number | undefined;
  /** True when the last measured offset exceeded the tolerance (runs change nothing). */
  readonly clockUnsafe: boolean;
}

function positive(value: number | undefined, fallback: number, option: string): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0)
    throw new KeywardError(
      'config_invalid',
      `scheduler.${option} must be a positive number of milliseconds`,
      {
        details: { option: `scheduler.${option}` },
      },
    );
  return v;
}

/**
 * Creates the rotation scheduler. Each run takes the store lock (`acquireLock`, one try), runs
 * {@link KeyService.runSchedule} with the lock's fencing token, and releases the lock. The plan
 * is recomputed inside the keyring compare-and-set, so even two holders could not rotate twice;
 * the fencing token additionally refuses a holder whose lock expired while it was paused.
 *
 * @example
 * ```ts
 * const scheduler = createRotationScheduler({ store, service, onError: (e) => log.error(e) }, { intervalMs: 60_000 })
 * scheduler.start()
 * await scheduler.tick() // { status: 'idle', generation: 7 } when nothing is due
 * await scheduler.stop()
 * ```
 */
export function createRotationScheduler(
  deps: RotationSchedulerDeps,
  options: RotationSchedulerOptions = {},
): RotationScheduler {
  const intervalMs = positive(options.intervalMs, 60_000, 'intervalMs');
  const lockTtlMs = positive(options.lockTtlMs, 30_000, 'lockTtlMs');
  const lockName = options.lockName ?? 'rotation';
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let inFlight: Promise<RotationTickResult> | undefined;
  let clockOffsetMs: number | undefined;
  let clockUnsafe = false;
  const now = deps.now ?? Date.now;

  const toError = (err: unknown) =>
    err instanceof KeywardError
      ? err
      : new KeywardError('internal_error', 'scheduled rotation failed', { cause: err });

  /** Measures this clock against the store's; resolves the offset when it is beyond tolerance. */
  async function clockCheck(): Promise<number | undefined> {
    const { store, clockSkewMs } = deps;
    if (clockSkewMs === undefined || typeof store.time !== 'function') return undefined;
    const before = now();
    const storeTime = await store.time();
    const after = now();
    const offset = Math.round((before + after) / 2 - storeTime);
    clockOffsetMs = offset;
    deps.onClockOffset?.(offset);
    clockUnsafe = Math.abs(offset) > clockSkewMs + Math.abs(after - before) / 2 + 1;
    return clockUnsafe ? offset : undefined;
  }

  async function runOnce(): Promise<RotationTickResult> {
    try {
      const offset = await clockCheck();
      if (offset !== undefined) return { status: 'clock_offset', offsetMs: offset };
    } catch (err) {
      return fail(err);
    }
    let lock: Awaited<ReturnType<Store['acquireLock']>>;
    try {
      lock = await deps.store.acquireLock(lockName, lockTtlMs);
    } catch (err) {
      return fail(err);
    }
    if (lock === null) return { status: 'busy' };
    try {
      const result = await deps.service.runSchedule(lock.token);
      if (result.actions.length === 0) return { status: 'idle', generation: result.generation };
      deps.onRotated?.(result);
      return { status: 'rotated', ...result, fence: lock.token };
    } catch (err) {
      return fail(err);
    } finally {
      await lock.release().catch(() => undefined);
    }
  }

  function fail(err: unknown): RotationTickResult {
    const error = toError(err);
    deps.onError?.(error);
    return { status: 'failed', error };
  }

  function tick(): Promise<RotationTickResult> {
    inFlight ??= runOnce().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  function schedule(delay: number): void {
    if (!running) return;
    timer = setTimeout(() => {
      void tick().finally(() => schedule(intervalMs * (0.9 + Math.random() * 0.2)));
    }, delay);
    timer.unref();
  }

  return {
    start() {
      if (running) return;
      running = true;
      // Jitter spreads the instances' lock attempts so they do not all hit the store at once.
      schedule(Math.random() * Math.min(intervalMs, 5000));
    },
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await inFlight;
    },
    tick,
    get running() {
      return running;
    },
    get clockOffsetMs() {
      return clockOffsetMs;
    },
    get clockUnsafe() {
      return clockUnsafe;
    },
  };
}
