import { createHash } from 'node:crypto';
import { KeywardError } from '../errors.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';

/** Limits of one route: failed attempts per window, per username and per client address. */
export interface RateLimitRule {
  /**
   * Failed attempts one username may make per window (all instances together). Login only: a
   * refresh names no user. `0` turns the per-user limit off.
   */
  perUser: number;
  /** Failed attempts one client address may make per window (all instances together). `0`: off. */
  perAddress: number;
  /** Window length in seconds (sliding). */
  windowSec: number;
}

/**
 * The `rateLimit` option of `createKeyward`: per route, the limits (any member left out keeps its
 * default) or `false` for none. `false` as a whole turns the limiter off.
 *
 * @example
 * ```ts
 * createKeyward({ rateLimit: { login: { perUser: 5, perAddress: 50, windowSec: 300 }, refresh: false } })
 * ```
 */
export type RateLimitOptions =
  | false
  | {
      /** `POST /auth/login`. Default {@link DEFAULT_RATE_LIMITS}`.login`. */
      login?: Partial<RateLimitRule> | false;
      /** `POST /auth/refresh` (per address; `perUser` is ignored). Default {@link DEFAULT_RATE_LIMITS}`.refresh`. */
      refresh?: Partial<Omit<RateLimitRule, 'perUser'>> | false;
    };

/** The routes the limiter guards. */
export type RateLimitedRoute = 'login' | 'refresh';

/**
 * Default limits: login 10 failed attempts per username and 100 per client address per 60 s;
 * refresh 60 failed attempts per client address per 60 s.
 *
 * @example
 * ```ts
 * createKeyward({ rateLimit: { login: { ...DEFAULT_RATE_LIMITS.login, perUser: 5 } } })
 * ```
 */
export const DEFAULT_RATE_LIMITS: Readonly<Record<RateLimitedRoute, Readonly<RateLimitRule>>> = {
  login: { perUser: 10, perAddress: 100, windowSec: 60 },
  refresh: { perUser: 0, perAddress: 60, windowSec: 60 },
};

/** Who is attempting: the username (login) and the client address (when the adapter knows it). */
export interface RateLimitSubject {
  username?: string | undefined;
  address?: string | undefined;
}

/** The answer of {@link RateLimiter.attempt}. */
export type RateLimitDecision =
  | {
      allowed: true;
      /**
       * The attempt is counted as failed until this is called: call it when the attempt succeeded
       * (a right password, a valid refresh token), so that only failures use up the limit. Never rejects.
       */
      succeeded(): Promise<void>;
    }
  | {
      allowed: false;
      /** Which limit was reached (the per-user one when both are). */
      limit: 'user' | 'address';
      /** Whole seconds until an attempt is allowed again (at least 1): the `Retry-After` value. */
      retryAfterSec: number;
    };

/** The store-backed brute-force limiter of the login and refresh routes. */
export interface RateLimiter {
  /** The effective limits per route (`undefined`: the route is not limited). */
  readonly rules: Readonly<Partial<Record<RateLimitedRoute, Readonly<RateLimitRule>>>>;
  /**
   * Counts one attempt (as failed until `succeeded()` is called) and says whether it may go on.
   * A refused attempt is not counted. Never rejects: when the store fails, the count falls back to
   * this instance's memory (see `onStoreError`).
   */
  attempt(route: RateLimitedRoute, subject: RateLimitSubject): Promise<RateLimitDecision>;
}

/** Options of {@link createRateLimiter}. */
export interface RateLimiterOptions {
  /** Where the counts live: the instance's store, so every instance shares them. */
  store: Store;
  /** The `rateLimit` option (default limits when absent). */
  limits?: RateLimitOptions | undefined;
  /** Clock in epoch ms (inject in tests). */
  now?: () => number;
  /**
   * Called when the store fails during an attempt (the count then uses this instance's memory
   * until the store answers again). Must not throw.
   */
  onStoreError?: (error: unknown) => void;
}

const PREFIX = 'ratelimit:';
/** While the store fails, how often an attempt tries it again (the others count in memory). */
const STORE_RETRY_MS = 5000;

function checkRule(route: string, rule: RateLimitRule): RateLimitRule {
  for (const member of ['perUser', 'perAddress', 'windowSec'] as const) {
    const value = rule[member];
    if (!Number.isSafeInteger(value) || value < 0 || (member === 'windowSec' && value < 1)) {
      throw new KeywardError(
        'config_invalid',
        `rateLimit.${route}.${member} must be a whole number ${member === 'windowSec' ? '>= 1' : '>= 0'}`,
      );
    }
  }
  return rule;
}

/** Resolves the `rateLimit` option into the effective rules; throws `config_invalid` on bad values. */
export function resolveRateLimits(
  limits: RateLimitOptions | undefined,
): Partial<Record<RateLimitedRoute, RateLimitRule>> {
  if (limits === false) return {};
  if (limits !== undefined && (typeof limits !== 'object' || limits === null)) {
    throw new KeywardError('config_invalid', 'rateLimit must be an object or false');
  }
  const rules: Partial<Record<RateLimitedRoute, RateLimitRule>> = {};
  for (const route of ['login', 'refresh'] as const) {
    const given = limits?.[route];
    if (given === false) continue;
    if (given !== undefined && (typeof given !== 'object' || given === null)) {
      throw new KeywardError('config_invalid', `rateLimit.${route} must be an object or false`);
    }
    const rule = checkRule(route, { ...DEFAULT_RATE_LIMITS[route], ...given });
    if (route === 'refresh') rule.perUser = 0;
    if (rule.perUser > 0 || rule.perAddress > 0) rules[route] = rule;
  }
  return rules;
}

/** The store key part for a username or an address: a hash, never the value itself. */
function hashed(kind: string, value: string): string {
  return createHash('sha256').update(`keyward-ratelimit\0${kind}\0${value}`).digest('base64url').slice(0, 22);
}

/**
 * Normalises a username for counting, so that `Alice` and `alice ` share one count (a directory
 * that treats them as one user must not give an attacker a fresh limit per spelling).
 */
function userKey(username: string): string {
  return username.normalize('NFKC').trim().toLowerCase();
}

/**
 * Creates the brute-force limiter: a sliding-window counter per username and per client address,
 * two fixed buckets per key in the store (`Store.increment` with a TTL), the previous bucket
 * weighted by how much of it still lies in the window. The counts are shared by every instance on
 * the same store. Keys hold hashes of the username and the address, never the values.
 *
 * @example
 * ```ts
 * const limiter = createRateLimiter({ store })
 * const decision = await limiter.attempt('login', { username, address })
 * if (!decision.allowed) return tooManyRequests(decision.retryAfterSec)
 * if (await users.verify(username, password)) await decision.succeeded()
 * ```
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const rules = resolveRateLimits(options.limits);
  const now = options.now ?? Date.now;
  // When the store fails, counts go on in memory (per instance) rather than failing the login or
  // letting guesses through unlimited; the memory store shares the injected clock.
  const fallback = createMemoryStore({ now });
  // Since when the store has failed (`undefined`: it answers); retried every STORE_RETRY_MS.
  let failingSince: number | undefined;

  type Counter = { kind: 'user' | 'address'; id: string; limit: number };

  /** Counts `by` in the current bucket; resolves the sliding estimate after it, and the bucket state. */
  async function count(store: Store, key: string, windowMs: number, t: number, by: number) {
    const bucket = Math.floor(t / windowMs);
    const [current, previous] = await Promise.all([
      store.increment(`${key}:${bucket}`, by, { ttlMs: 2 * windowMs }),
      store.get(`${key}:${bucket - 1}`),
    ]);
    const prev = Number(previous ?? 0) || 0;
    const elapsed = (t - bucket * windowMs) / windowMs; // share of the current bucket gone, [0, 1)
    return { current, prev, elapsed, bucket, estimate: current + prev * (1 - elapsed) };
  }

  /**
   * Seconds until one more attempt fits: the earliest time at which the estimate of the sliding
   * window, with this attempt, is at most `limit`.
   */
  function retryAfter(
    state: { current: number; prev: number; elapsed: number },
    limit: number,
    windowMs: number,
  ) {
    // Counts without the refused attempt.
    const current = state.current - 1;
    let waitMs: number;
    if (current + 1 <= limit) {
      // The previous bucket must fade: prev * (1 - f) + current + 1 <= limit.
      const f = 1 - (limit - current - 1) / state.prev;
      waitMs = (f - state.elapsed) * windowMs;
    } else {
      // Wait into the next bucket, where this one is "previous": current * (1 - f) + 1 <= limit.
      const f = 1 - (limit - 1) / current;
      waitMs = (1 - state.elapsed + f) * windowMs;
    }
    // Whole ms first: float error must not add a second (1 - 2/3 is not exactly 1/3).
    return Math.max(1, Math.ceil(Math.round(waitMs) / 1000));
  }

  async function run(store: Store, route: RateLimitedRoute, counters: Counter[], rule: RateLimitRule) {
    const windowMs = rule.windowSec * 1000;
    const t = now();
    const keys = counters.map((c) => `${PREFIX}${route}:${c.kind}:${c.id}`);
    const states = await Promise.all(keys.map((key) => count(store, key, windowMs, t, 1)));
    let refused: { limit: 'user' | 'address'; retryAfterSec: number } | undefined;
    counters.forEach((counter, i) => {
      const state = states[i];
      if (state === undefined || state.estimate <= counter.limit) return;
      const retryAfterSec = retryAfter(state, counter.limit, windowMs);
      if (refused === undefined) refused = { limit: counter.kind, retryAfterSec };
      else refused.retryAfterSec = Math.max(refused.retryAfterSec, retryAfterSec);
    });
    // Undoes the count of this attempt in the bucket it went to (a refusal, or a success).
    const undo = () =>
      Promise.all(
        keys.map((key, i) => store.increment(`${key}:${states[i]?.bucket}`, -1, { ttlMs: 2 * windowMs })),
      );
    return { refused, undo };
  }

  async function attempt(route: RateLimitedRoute, subject: RateLimitSubject): Promise<RateLimitDecision> {
    const rule = rules[route];
    const counters: Counter[] = [];
    if (rule && rule.perUser > 0 && subject.username !== undefined)
      counters.push({ kind: 'user', id: hashed('user', userKey(subject.username)), limit: rule.perUser });
    if (rule && rule.perAddress > 0 && subject.address)
      counters.push({ kind: 'address', id: hashed('address', subject.address), limit: rule.perAddress });
    if (rule === undefined || counters.length === 0) return { allowed: true, succeeded: async () => {} };
    let store =
      failingSince !== undefined && now() - failingSince < STORE_RETRY_MS ? fallback : options.store;
    let result: Awaited<ReturnType<typeof run>>;
    try {
      result = await run(store, route, counters, rule);
      if (store === options.store) failingSince = undefined;
    } catch (error) {
      if (store === fallback) throw error; // the memory store does not fail
      failingSince = now();
      try {
        options.onStoreError?.(error);
      } catch {
        // a faulty hook must not break logins
      }
      store = fallback;
      result = await run(store, route, counters, rule);
    }
    const { refused, undo } = result;
    const settle = async () => {
      try {
        await undo();
      } catch {
        // the attempt stays counted: at worst a slightly early limit, never an error for the caller
      }
    };
    if (refused !== undefined) {
      await settle();
      return { allowed: false, ...refused };
    }
    return { allowed: true, succeeded: settle };
  }

  return {
    rules,
    attempt: (route, subject) =>
      attempt(route, subject).catch(() => ({ allowed: true as const, succeeded: async () => {} })),
  };
}
