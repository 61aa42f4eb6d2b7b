import type { KeywardErrorCode } from '../errors.js';

/** How many `access.denied` events one instance logs per window before summarising. */
export interface DeniedRateLimit {
  perWindow: number;
  windowMs: number;
}

/**
 * Default: 100 `access.denied` events per 10 s per instance.
 *
 * @example
 * ```ts
 * createAuditLog({ deniedRateLimit: { ...DEFAULT_DENIED_RATE_LIMIT, perWindow: 500 } });
 * ```
 */
export const DEFAULT_DENIED_RATE_LIMIT: DeniedRateLimit = { perWindow: 100, windowMs: 10_000 };

/** What a closed window left to report. */
export interface DeniedSummary {
  suppressed: number;
  suppressedByCode: Partial<Record<KeywardErrorCode, number>>;
  windowStart: number;
}

/**
 * Fixed-window limiter for `access.denied`: a credential-stuffing flood must not flood the audit
 * log or its disk, but the log must still say that it happened (the summary).
 */
export class DeniedLimiter {
  private windowStart = Number.NEGATIVE_INFINITY;
  private count = 0;
  private suppressed = 0;
  private byCode: Partial<Record<KeywardErrorCode, number>> = {};

  constructor(private readonly limit: DeniedRateLimit) {}

  /** The summary of a window that has ended with drops, and resets it; else `undefined`. */
  closeWindow(now: number): DeniedSummary | undefined {
    if (now < this.windowStart + this.limit.windowMs) return undefined;
    const summary =
      this.suppressed > 0
        ? { suppressed: this.suppressed, suppressedByCode: this.byCode, windowStart: this.windowStart }
        : undefined;
    this.windowStart = now;
    this.count = 0;
    this.suppressed = 0;
    this.byCode = {};
    return summary;
  }

  /** Whether one more denial may be logged now; counts it as suppressed otherwise. */
  admit(code: KeywardErrorCode): boolean {
    this.count += 1;
    if (this.count <= this.limit.perWindow) return true;
    this.suppressed += 1;
    this.byCode[code] = (this.byCode[code] ?? 0) + 1;
    return false;
  }

  /** Summary of the current window regardless of its end (used on close). */
  drain(): DeniedSummary | undefined {
    if (this.suppressed === 0) return undefined;
    const summary = {
      suppressed: this.suppressed,
      suppressedByCode: this.byCode,
      windowStart: this.windowStart,
    };
    this.suppressed = 0;
    this.byCode = {};
    return summary;
  }

  /** When the current window ends (for the summary timer). */
  get windowEnd(): number {
    return this.windowStart + this.limit.windowMs;
  }
}
