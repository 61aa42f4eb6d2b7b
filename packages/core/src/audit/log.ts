import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { KeywardError } from '../errors.js';
import { AUDIT_GENESIS_HASH, type AuditChainResult, hashAuditEvent, verifyAuditChain } from './chain.js';
import {
  DEFAULT_DENIED_RATE_LIMIT,
  DeniedLimiter,
  type DeniedRateLimit,
  type DeniedSummary,
} from './denied-limiter.js';
import {
  AUDIT_EVENT_TYPES,
  type AuditActor,
  type AuditEvent,
  type AuditEventInput,
  type AuditEventType,
} from './events.js';
import { scrubAuditFields } from './scrub.js';
import { type AuditSink, pinoSink } from './sinks.js';

/** Options for {@link createAuditLog}. */
export interface AuditLogOptions {
  /** Where events go. Default: one {@link pinoSink} to stdout. */
  sinks?: AuditSink[];
  /** Names this process in `actor.instanceId`. Default: `<hostname>:<pid>`. */
  instanceId?: string;
  /** Clock in epoch ms (inject in tests). */
  now?: () => number;
  /** Limit for `access.denied`. Default 100 per 10 s. */
  deniedRateLimit?: DeniedRateLimit;
  /** Called when a sink throws or rejects (after it is counted). Must not throw. */
  onSinkError?: (error: unknown, sink: string) => void;
  /**
   * How many of the latest events the log keeps in memory for {@link AuditLog.recent} (the admin
   * console's audit view). Default 1000; 0 keeps none.
   */
  recentEvents?: number;
}

/**
 * The state of the audit chain as {@link AuditLog.verify} reports it. `source: 'sink'`: the chain a
 * sink stores (a {@link jsonlFileSink} file, verified from its first line), named by `sink`;
 * `source: 'memory'`: no sink can be verified, so only the events kept in memory were checked.
 */
export type AuditChainState = AuditChainResult & { source: 'sink' | 'memory'; sink?: string };

/** Counters an audit log keeps, for metrics and health. */
export interface AuditStats {
  emitted: number;
  /** `access.denied` events dropped by the rate limiter. */
  rateLimited: number;
  /** Fields the scrubber dropped. */
  scrubbedFields: number;
  sinkErrors: number;
  /** Events emitted after `close()` and ignored. */
  droppedAfterClose: number;
}

/** A hash-chained, typed audit log. */
export interface AuditLog {
  /** Records an event and returns it, or `undefined` if it was rate-limited or the log is closed. */
  emit(input: AuditEventInput): AuditEvent | undefined;
  /** Resolves once every sink has stored what was emitted so far. Never rejects. */
  flush(): Promise<void>;
  /** Emits a pending rate-limit summary, flushes and closes every sink. Never rejects. */
  close(): Promise<void>;
  /** Counters since creation. */
  stats(): AuditStats;
  /** `hash` of the last event (the chain head). */
  readonly lastHash: string;
  /**
   * The latest events this process emitted (at most `recentEvents` are kept), newest first,
   * optionally only those of `type`; `limit` caps the answer (default 100).
   */
  recent(options?: { type?: AuditEventType; limit?: number }): AuditEvent[];
  /**
   * Verifies the chain: the stored one of the first sink that can verify itself (a
   * {@link jsonlFileSink}: the whole file, after a flush), else the events kept in memory.
   * Never rejects: a sink that cannot be read is a broken chain at index 0 with its reason.
   */
  verify(): Promise<AuditChainState>;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const member of Object.values(value)) deepFreeze(member);
    Object.freeze(value);
  }
  return value;
}

function validateOptions(options: AuditLogOptions): DeniedRateLimit {
  const limit = options.deniedRateLimit ?? DEFAULT_DENIED_RATE_LIMIT;
  if (!Number.isInteger(limit.perWindow) || limit.perWindow < 1) {
    throw new KeywardError('config_invalid', 'deniedRateLimit.perWindow must be an integer >= 1');
  }
  if (!Number.isFinite(limit.windowMs) || limit.windowMs <= 0) {
    throw new KeywardError('config_invalid', 'deniedRateLimit.windowMs must be a positive number');
  }
  if (options.sinks !== undefined && !Array.isArray(options.sinks)) {
    throw new KeywardError('config_invalid', 'sinks must be an array of audit sinks');
  }
  return limit;
}

/**
 * Creates an audit log. Each event gets an id, a time, the actor with this instance's id, a
 * `prevHash` linking it to the previous event and its own `hash`; the chain continues from the
 * first sink that already stores events (e.g. a {@link jsonlFileSink} file). Secret-looking
 * fields are dropped, `access.denied` is rate-limited with a summary, and sink failures are
 * counted, never thrown.
 *
 * @example
 * ```ts
 * const audit = createAuditLog({ sinks: [pinoSink(), jsonlFileSink('audit.jsonl')] });
 * audit.emit({ type: 'key.rotated', kid, use: 'sig', rotationType: 'scheduled', actor: { type: 'scheduler' } });
 * await audit.close();
 * ```
 */
export function createAuditLog(options: AuditLogOptions = {}): AuditLog {
  const limit = validateOptions(options);
  const sinks = options.sinks ?? [pinoSink()];
  const now = options.now ?? Date.now;
  const instanceId = options.instanceId ?? `${hostname()}:${process.pid}`;
  const limiter = new DeniedLimiter(limit);
  const keepRecent = options.recentEvents ?? 1000;
  if (!Number.isInteger(keepRecent) || keepRecent < 0)
    throw new KeywardError('config_invalid', 'recentEvents must be an integer >= 0');
  // The latest events, oldest first; trimmed in halves so an emit stays O(1) amortised.
  let recentEvents: AuditEvent[] = [];
  const stats: AuditStats = {
    emitted: 0,
    rateLimited: 0,
    scrubbedFields: 0,
    sinkErrors: 0,
    droppedAfterClose: 0,
  };
  const pending = new Set<Promise<void>>();
  let lastHash = sinks.find((sink) => sink.lastHash !== undefined)?.lastHash ?? AUDIT_GENESIS_HASH;
  let closed = false;
  let summaryTimer: NodeJS.Timeout | undefined;

  const sinkFailed = (error: unknown, sink: AuditSink) => {
    stats.sinkErrors += 1;
    try {
      options.onSinkError?.(error, sink.name);
    } catch {
      // a faulty error hook must not break auditing either
    }
  };

  const track = (sink: AuditSink, work: () => void | Promise<void>) => {
    try {
      const result = work();
      if (result instanceof Promise) {
        const settled = result.then(
          () => undefined,
          (error: unknown) => sinkFailed(error, sink),
        );
        pending.add(settled);
        void settled.finally(() => pending.delete(settled));
      }
    } catch (error) {
      sinkFailed(error, sink);
    }
  };

  const append = (fields: Record<string, unknown>, actor: AuditActor, outcome: string): AuditEvent => {
    const { fields: clean, dropped } = scrubAuditFields({ ...fields, actor });
    stats.scrubbedFields += dropped.length;
    const event: Record<string, unknown> = {
      ...clean,
      id: randomUUID(),
      time: new Date(now()).toISOString(),
      actor: clean.actor ?? { type: 'system', instanceId },
      outcome,
      prevHash: lastHash,
    };
    if (dropped.length > 0) event.scrubbed = dropped;
    else delete event.scrubbed;
    event.hash = hashAuditEvent(event);
    lastHash = event.hash as string;
    stats.emitted += 1;
    // Frozen: every sink gets the same object, and one sink must not alter what the next one stores.
    const typed = deepFreeze(event) as unknown as AuditEvent;
    if (keepRecent > 0) {
      recentEvents.push(typed);
      if (recentEvents.length >= keepRecent * 2) recentEvents = recentEvents.slice(-keepRecent);
    }
    for (const sink of sinks) track(sink, () => sink.write(typed));
    return typed;
  };

  const emitSummary = (summary: DeniedSummary) => {
    const [firstCode] = Object.keys(summary.suppressedByCode);
    append(
      {
        type: 'access.denied',
        code: firstCode ?? 'invalid_request',
        reason: `rate limit: ${summary.suppressed} denials since ${new Date(summary.windowStart).toISOString()} not logged`,
        suppressed: summary.suppressed,
        suppressedByCode: summary.suppressedByCode,
      },
      { type: 'system', instanceId },
      'denied',
    );
  };

  const settleWindow = () => {
    const summary = limiter.closeWindow(now());
    if (summary !== undefined) emitSummary(summary);
  };

  const armSummaryTimer = () => {
    if (summaryTimer !== undefined) return;
    const delay = Math.max(0, limiter.windowEnd - now());
    summaryTimer = setTimeout(() => {
      summaryTimer = undefined;
      if (!closed) settleWindow();
    }, delay);
    summaryTimer.unref();
  };

  return {
    get lastHash() {
      return lastHash;
    },
    emit(input) {
      if (typeof input !== 'object' || input === null || !AUDIT_EVENT_TYPES.includes(input.type)) {
        throw new KeywardError('audit_event_invalid', 'Audit event has no known `type`', {
          details: { allowed: AUDIT_EVENT_TYPES.join(', ') },
        });
      }
      if (closed) {
        stats.droppedAfterClose += 1;
        return undefined;
      }
      settleWindow();
      const { actor, outcome, ...fields } = input;
      // `access.throttled` shares the budget of `access.denied`: a flood of refused logins must not
      // flood the log either (its summary counts them under `too_many_requests`).
      const limited =
        input.type === 'access.denied' || input.type === 'access.throttled'
          ? !limiter.admit(input.type === 'access.denied' ? input.code : 'too_many_requests')
          : false;
      if (limited) {
        stats.rateLimited += 1;
        armSummaryTimer();
        return undefined;
      }
      const defaultOutcome =
        input.type === 'access.denied' || input.type === 'access.throttled' ? 'denied' : 'success';
      return append(fields, { type: 'system', ...actor, instanceId }, outcome ?? defaultOutcome);
    },
    async flush() {
      if (!closed) settleWindow();
      await Promise.all(pending);
      await Promise.all(
        sinks.map(async (sink) => {
          try {
            await sink.flush?.();
          } catch (error) {
            sinkFailed(error, sink);
          }
        }),
      );
    },
    async close() {
      if (closed) return;
      const summary = limiter.drain();
      if (summary !== undefined) emitSummary(summary);
      closed = true;
      if (summaryTimer !== undefined) clearTimeout(summaryTimer);
      await this.flush();
      await Promise.all(
        sinks.map(async (sink) => {
          try {
            await sink.close?.();
          } catch (error) {
            sinkFailed(error, sink);
          }
        }),
      );
    },
    stats() {
      return { ...stats };
    },
    recent(query = {}) {
      const limit = Math.max(0, Math.min(query.limit ?? 100, keepRecent));
      const out: AuditEvent[] = [];
      const window = recentEvents.slice(-keepRecent);
      for (let i = window.length - 1; i >= 0 && out.length < limit; i--) {
        const event = window[i] as AuditEvent;
        if (query.type === undefined || event.type === query.type) out.push(event);
      }
      return out;
    },
    async verify() {
      const verifiable = sinks.find((sink) => typeof sink.verify === 'function');
      if (verifiable?.verify) {
        await this.flush();
        try {
          return { ...(await verifiable.verify()), source: 'sink', sink: verifiable.name };
        } catch (error) {
          const reason = error instanceof KeywardError ? error.message : 'the sink cannot be read';
          return { ok: false, index: 0, reason, source: 'sink', sink: verifiable.name };
        }
      }
      const window = recentEvents.slice(-keepRecent);
      const first = window[0];
      const result = verifyAuditChain(
        window.map((event) => JSON.stringify(event)),
        first === undefined ? {} : { expectedPrevHash: first.prevHash },
      );
      return { ...result, source: 'memory' };
    },
  };
}
