import { type DestinationStream, type Logger, pino } from 'pino';
import type { AuditChainResult } from './chain.js';
import type { AuditEvent } from './events.js';

/**
 * Where audit events go. `write` may be sync or async; a throw or a rejection is caught and
 * counted by the audit log, never passed to the code that emitted the event.
 */
export interface AuditSink {
  /** Short name for error reports and metrics (`pino`, `jsonl`, `callback`). */
  readonly name: string;
  write(event: AuditEvent): void | Promise<void>;
  /** Resolves once every event written so far is stored. */
  flush?(): Promise<void>;
  /** Flushes and releases the sink's resources. */
  close?(): Promise<void>;
  /** `hash` of the last event this sink already stores, so a new log continues its chain. */
  readonly lastHash?: string | undefined;
  /** Verifies the chain the sink stores (see {@link AuditLog.verify}); a sink that keeps nothing has none. */
  verify?(): Promise<AuditChainResult>;
}

/**
 * Field names pino redacts in the default audit logger, at the top level and one level down.
 * Audit events never carry them (the scrubber drops them); this guards anything else logged
 * through the same logger.
 *
 * @example
 * ```ts
 * const logger = pino({ redact: [...AUDIT_REDACT_PATHS] });
 * ```
 */
export const AUDIT_REDACT_PATHS: readonly string[] = [
  'authorization',
  'token',
  'secret',
  'key',
  'password',
].flatMap((name) => [name, `*.${name}`, `*.*.${name}`]);

/**
 * The default audit logger: pino JSON at `info`, with {@link AUDIT_REDACT_PATHS} censored.
 * Writes to stdout unless a destination is given.
 *
 * @example
 * ```ts
 * const sink = pinoSink(createAuditLogger(pino.destination('/var/log/keyward/audit.log')));
 * ```
 */
export function createAuditLogger(destination?: DestinationStream): Logger {
  const options = {
    level: 'info',
    name: 'keyward-audit',
    redact: { paths: [...AUDIT_REDACT_PATHS], censor: '[redacted]' },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/**
 * A sink that logs each event through pino at `info`, as `{ audit: event, msg: event.type }`
 * (nested, so the event's `time` and `id` never clash with pino's own fields).
 *
 * @example
 * ```ts
 * const audit = createAuditLog({ sinks: [pinoSink(app.log)] });
 * ```
 */
export function pinoSink(logger: Logger = createAuditLogger()): AuditSink {
  return {
    name: 'pino',
    write(event) {
      logger.info({ audit: event }, event.type);
    },
    flush() {
      return new Promise<void>((resolve) => {
        // flush() throws on a destination that cannot flush (e.g. a plain stream): nothing to wait for.
        try {
          logger.flush(() => resolve());
        } catch {
          resolve();
        }
      });
    },
  };
}

/**
 * A sink that hands every event to a function (to forward to a SIEM, a queue, a test).
 *
 * @example
 * ```ts
 * const events: AuditEvent[] = [];
 * const audit = createAuditLog({ sinks: [callbackSink((event) => events.push(event))] });
 * ```
 */
export function callbackSink(fn: (event: AuditEvent) => void | Promise<void>): AuditSink {
  return { name: 'callback', write: fn };
}
