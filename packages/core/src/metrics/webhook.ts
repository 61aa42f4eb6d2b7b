import { KeywardError } from '../errors.js';

/** Where and how alerts are POSTed. */
export interface AlertWebhookOptions {
  url: string;
  /** Per-attempt timeout. Default 5000 ms. */
  timeoutMs?: number;
  /** Extra attempts after the first fails (network error, timeout, 429 or 5xx). Default 2. */
  retries?: number;
  /** Delay before retry n is `retryDelayMs * n`. Default 250 ms. */
  retryDelayMs?: number;
  /** Extra request headers (e.g. an auth header for the receiver). */
  headers?: Record<string, string>;
}

/** Outcome of one delivery. `error` never contains the URL or headers. */
export type WebhookDelivery = { ok: true; attempts: number } | { ok: false; attempts: number; error: string };

/** Validated webhook settings. */
export interface ResolvedWebhook {
  url: URL;
  timeoutMs: number;
  retries: number;
  retryDelayMs: number;
  headers: Record<string, string>;
}

function nonNegativeInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) {
    throw new KeywardError('config_invalid', `webhook.${name} must be a non-negative integer`);
  }
  return value;
}

/** Checks webhook options at construction; the URL is never echoed (it may carry a token). */
export function resolveWebhook(options: AlertWebhookOptions): ResolvedWebhook {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch (err) {
    throw new KeywardError('config_invalid', 'webhook.url must be an absolute http(s) URL', { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new KeywardError('config_invalid', 'webhook.url must be an absolute http(s) URL');
  }
  const timeoutMs = nonNegativeInteger(options.timeoutMs, 5_000, 'timeoutMs');
  if (timeoutMs === 0) throw new KeywardError('config_invalid', 'webhook.timeoutMs must be at least 1');
  return {
    url,
    timeoutMs,
    retries: nonNegativeInteger(options.retries, 2, 'retries'),
    retryDelayMs: nonNegativeInteger(options.retryDelayMs, 250, 'retryDelayMs'),
    headers: { ...options.headers },
  };
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function describeFailure(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'timeout';
  if (err instanceof Error) return `network error (${err.name})`;
  return 'network error';
}

/**
 * POSTs `body` as JSON with a per-attempt timeout and retries. Never rejects: the result says
 * whether it was delivered and how many attempts it took.
 */
export async function postWebhook(webhook: ResolvedWebhook, body: unknown): Promise<WebhookDelivery> {
  const payload = JSON.stringify(body);
  let lastError = 'not attempted';
  const attempts = webhook.retries + 1;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1 && webhook.retryDelayMs > 0) await delay(webhook.retryDelayMs * (attempt - 1));
    try {
      const response = await fetch(webhook.url, {
        method: 'POST',
        headers: { ...webhook.headers, 'content-type': 'application/json' },
        body: payload,
        signal: AbortSignal.timeout(webhook.timeoutMs),
      });
      // Drain the body so the connection can be reused.
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return { ok: true, attempts: attempt };
      lastError = `HTTP ${response.status}`;
      // Other 4xx mean the request itself is wrong: retrying will not help.
      if (response.status < 500 && response.status !== 429)
        return { ok: false, attempts: attempt, error: lastError };
    } catch (err) {
      lastError = describeFailure(err);
    }
  }
  return { ok: false, attempts, error: lastError };
}
