import { KeywardError } from '../errors.js';
import { type AlertWebhookOptions, postWebhook, type ResolvedWebhook, resolveWebhook } from './webhook.js';

/** The alerts keyward raises. */
export type AlertName = 'verify_failure_rate' | 'verify_latency' | 'sync_lag' | 'rotation_failure';

/** Thresholds; `false` turns a rule off. Defaults follow the reference system's monitoring table. */
export interface AlertRules {
  /** Share of failed verifications in a window (default > 1 % over at least 100 verifications). */
  verifyFailureRate: { threshold: number; minSamples: number } | false;
  /** A latency quantile in a window (default p99 > 100 ms over at least 20 verifications). */
  verifyLatency: { quantile: number; thresholdMs: number; minSamples: number } | false;
  /** Largest sync lag seen in a window (default > 5000 ms). */
  syncLag: { thresholdMs: number } | false;
  /** Any failed rotation (default on). */
  rotationFailure: boolean;
}

/**
 * Default rules.
 *
 * @example
 * ```ts
 * const strict: AlertRules = { ...DEFAULT_ALERT_RULES, syncLag: { thresholdMs: 1_000 } };
 * ```
 */
export const DEFAULT_ALERT_RULES: AlertRules = {
  verifyFailureRate: { threshold: 0.01, minSamples: 100 },
  verifyLatency: { quantile: 0.99, thresholdMs: 100, minSamples: 20 },
  syncLag: { thresholdMs: 5_000 },
  rotationFailure: true,
};

/** A raised alert, as passed to `onAlert` and POSTed to the webhook. */
export interface Alert {
  name: AlertName;
  severity: 'warning' | 'critical';
  /** The measured value (a rate, milliseconds, or a count). */
  value: number;
  threshold: number;
  message: string;
  /** ISO time the alert fired. */
  time: string;
  /** ISO start of the window it covers. */
  windowStart: string;
  source: 'keyward';
}

/** Options for {@link createAlerts}. */
export interface AlertsOptions {
  rules?: Partial<AlertRules>;
  /** Called once per fired alert; a throw is ignored. */
  onAlert?: (alert: Alert) => void;
  /** POST each alert as JSON here. */
  webhook?: AlertWebhookOptions;
  /** Called when a webhook delivery failed after all retries. */
  onWebhookError?: (alert: Alert, error: string) => void;
  /** Clock in epoch ms (inject in tests). */
  now?: () => number;
  /** Window length; each alert fires at most once per window. Default 60 000 ms. */
  windowMs?: number;
}

/** Alert evaluation over tumbling windows. */
export interface Alerts {
  recordVerify(ok: boolean, durationMs?: number): void;
  recordSyncLag(lagMs: number): void;
  recordRotationFailure(): void;
  /** Checks the rules against the current window; returns the alerts that fired now. */
  evaluate(): Alert[];
  /** Resolves when every webhook delivery started so far has finished. Never rejects. */
  flush(): Promise<void>;
  stats(): { fired: number; webhookDelivered: number; webhookFailed: number };
}

const RESERVOIR_SIZE = 2048;

class AlertWindow {
  verifications = 0;
  failures = 0;
  latencies = new Float64Array(RESERVOIR_SIZE);
  latencySamples = 0;
  maxSyncLagMs = 0;
  rotationFailures = 0;
  readonly fired = new Set<AlertName>();
  constructor(readonly start: number) {}

  addLatency(ms: number): void {
    // Reservoir sampling (Algorithm R): a uniform sample of the window in fixed memory.
    const seen = this.latencySamples++;
    if (seen < RESERVOIR_SIZE) this.latencies[seen] = ms;
    else {
      const slot = Math.floor(Math.random() * (seen + 1));
      if (slot < RESERVOIR_SIZE) this.latencies[slot] = ms;
    }
  }

  latencyQuantile(q: number): number {
    const sample = this.latencies.slice(0, Math.min(this.latencySamples, RESERVOIR_SIZE)).sort();
    return sample[Math.min(sample.length - 1, Math.ceil(q * sample.length) - 1)] ?? 0;
  }
}

function resolveRules(rules: Partial<AlertRules> = {}): AlertRules {
  const merged: AlertRules = { ...DEFAULT_ALERT_RULES };
  for (const name of Object.keys(rules) as (keyof AlertRules)[]) {
    const value = rules[name];
    const base = DEFAULT_ALERT_RULES[name];
    if (value === undefined) continue;
    (merged as unknown as Record<string, unknown>)[name] =
      typeof value === 'object' && typeof base === 'object' ? { ...base, ...value } : value;
  }
  const rate = merged.verifyFailureRate;
  if (rate && !(rate.threshold >= 0 && rate.threshold <= 1)) {
    throw new KeywardError('config_invalid', 'rules.verifyFailureRate.threshold must be between 0 and 1');
  }
  const latency = merged.verifyLatency;
  if (latency && !(latency.quantile > 0 && latency.quantile <= 1)) {
    throw new KeywardError('config_invalid', 'rules.verifyLatency.quantile must be in (0, 1]');
  }
  return merged;
}

/**
 * Creates alert rules fed by `record…` calls and checked by `evaluate()` (call it on an interval,
 * e.g. every 10 s; a window's data is also evaluated when the next window starts). Each alert fires
 * at most once per window; the webhook is POSTed with retries and a timeout and never throws.
 *
 * @example
 * ```ts
 * const alerts = createAlerts({ webhook: { url: process.env.ALERT_WEBHOOK_URL! }, onAlert: (a) => log.warn(a) });
 * alerts.recordVerify(false);
 * setInterval(() => alerts.evaluate(), 10_000).unref();
 * ```
 */
export function createAlerts(options: AlertsOptions = {}): Alerts {
  const rules = resolveRules(options.rules);
  const now = options.now ?? Date.now;
  const windowMs = options.windowMs ?? 60_000;
  if (!Number.isFinite(windowMs) || windowMs <= 0) {
    throw new KeywardError('config_invalid', 'windowMs must be a positive number');
  }
  const webhook: ResolvedWebhook | undefined = options.webhook ? resolveWebhook(options.webhook) : undefined;
  const stats = { fired: 0, webhookDelivered: 0, webhookFailed: 0 };
  const pending = new Set<Promise<void>>();
  const windowStartOf = (t: number) => Math.floor(t / windowMs) * windowMs;
  let current = new AlertWindow(windowStartOf(now()));

  const deliver = (alert: Alert) => {
    try {
      options.onAlert?.(alert);
    } catch {
      // an alert hook must not break the code that recorded the sample
    }
    if (webhook === undefined) return;
    const delivery = postWebhook(webhook, alert).then((result) => {
      if (result.ok) stats.webhookDelivered += 1;
      else {
        stats.webhookFailed += 1;
        try {
          options.onWebhookError?.(alert, result.error);
        } catch {
          // ignored, as above
        }
      }
    });
    pending.add(delivery);
    void delivery.finally(() => pending.delete(delivery));
  };

  const check = (window: AlertWindow, at: number): Alert[] => {
    const fired: Alert[] = [];
    const fire = (
      name: AlertName,
      severity: Alert['severity'],
      value: number,
      threshold: number,
      message: string,
    ) => {
      if (window.fired.has(name)) return;
      window.fired.add(name);
      const alert: Alert = {
        name,
        severity,
        value,
        threshold,
        message,
        time: new Date(at).toISOString(),
        windowStart: new Date(window.start).toISOString(),
        source: 'keyward',
      };
      stats.fired += 1;
      fired.push(alert);
      deliver(alert);
    };
    const rate = rules.verifyFailureRate;
    if (rate && window.verifications >= rate.minSamples && window.verifications > 0) {
      const value = window.failures / window.verifications;
      if (value > rate.threshold) {
        fire(
          'verify_failure_rate',
          'warning',
          value,
          rate.threshold,
          `${window.failures} of ${window.verifications} verifications failed`,
        );
      }
    }
    const latency = rules.verifyLatency;
    if (latency && window.latencySamples >= latency.minSamples && window.latencySamples > 0) {
      const value = window.latencyQuantile(latency.quantile);
      if (value > latency.thresholdMs) {
        fire(
          'verify_latency',
          'warning',
          value,
          latency.thresholdMs,
          `verification p${latency.quantile * 100} is ${value} ms`,
        );
      }
    }
    if (rules.syncLag && window.maxSyncLagMs > rules.syncLag.thresholdMs) {
      fire(
        'sync_lag',
        'warning',
        window.maxSyncLagMs,
        rules.syncLag.thresholdMs,
        `sync lag reached ${window.maxSyncLagMs} ms`,
      );
    }
    if (rules.rotationFailure && window.rotationFailures > 0) {
      fire(
        'rotation_failure',
        'critical',
        window.rotationFailures,
        0,
        `${window.rotationFailures} key rotation(s) failed`,
      );
    }
    return fired;
  };

  /** Moves to the window containing `at`, first evaluating the one that ends. */
  const roll = (at: number): Alert[] => {
    if (at < current.start + windowMs) return [];
    const fired = check(current, at);
    current = new AlertWindow(windowStartOf(at));
    return fired;
  };

  return {
    recordVerify(ok, durationMs) {
      roll(now());
      current.verifications += 1;
      if (!ok) current.failures += 1;
      if (durationMs !== undefined && Number.isFinite(durationMs)) current.addLatency(durationMs);
    },
    recordSyncLag(lagMs) {
      roll(now());
      if (Number.isFinite(lagMs)) current.maxSyncLagMs = Math.max(current.maxSyncLagMs, lagMs);
    },
    recordRotationFailure() {
      roll(now());
      current.rotationFailures += 1;
    },
    evaluate() {
      const at = now();
      const closed = roll(at);
      return [...closed, ...check(current, at)];
    },
    async flush() {
      await Promise.all(pending);
    },
    stats: () => ({ ...stats }),
  };
}
