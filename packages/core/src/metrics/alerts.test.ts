import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type Alert, createAlerts } from './alerts.js';

describe('createAlerts rules', () => {
  it('fires the failure-rate alert above 1 % once per window, and again in the next window', () => {
    let t = 0;
    const seen: Alert[] = [];
    const alerts = createAlerts({ now: () => t, windowMs: 60_000, onAlert: (a) => seen.push(a) });
    for (let i = 0; i < 99; i++) alerts.recordVerify(i !== 0);
    for (let i = 0; i < 5; i++) alerts.recordVerify(false);
    // 6 of 104 failed, and 104 reaches the 100-sample minimum.
    expect(alerts.evaluate().map((a) => a.name)).toEqual(['verify_failure_rate']);
    expect(seen[0]).toMatchObject({
      severity: 'warning',
      threshold: 0.01,
      windowStart: '1970-01-01T00:00:00.000Z',
    });
    expect(seen[0]?.value).toBeCloseTo(6 / 104);
    for (let i = 0; i < 50; i++) alerts.recordVerify(false);
    t = 30_000;
    expect(alerts.evaluate()).toEqual([]);
    t = 60_000;
    for (let i = 0; i < 200; i++) alerts.recordVerify(i % 10 !== 0);
    expect(alerts.evaluate().map((a) => a.name)).toEqual(['verify_failure_rate']);
    expect(seen).toHaveLength(2);
  });

  it('stays quiet below the minimum sample count or at the threshold', () => {
    let t = 0;
    const alerts = createAlerts({ now: () => t });
    for (let i = 0; i < 10; i++) alerts.recordVerify(false);
    expect(alerts.evaluate()).toEqual([]);
    t = 60_000;
    for (let i = 0; i < 1000; i++) alerts.recordVerify(i >= 10);
    expect(alerts.evaluate()).toEqual([]);
  });

  it('fires latency, sync-lag and rotation-failure alerts from their defaults', () => {
    const t = 0;
    const alerts = createAlerts({ now: () => t });
    for (let i = 0; i < 100; i++) alerts.recordVerify(true, i < 98 ? 1 : 250);
    alerts.recordSyncLag(4_000);
    expect(alerts.evaluate().map((a) => a.name)).toEqual(['verify_latency']);
    alerts.recordSyncLag(5_001);
    alerts.recordRotationFailure();
    const fired = alerts.evaluate();
    expect(fired.map((a) => a.name)).toEqual(['sync_lag', 'rotation_failure']);
    expect(fired[1]).toMatchObject({ severity: 'critical', value: 1 });
    expect(alerts.evaluate()).toEqual([]);
    expect(alerts.stats().fired).toBe(3);
  });

  it('evaluates a window that ended before evaluate() ran', () => {
    let t = 0;
    const alerts = createAlerts({ now: () => t, rules: { syncLag: { thresholdMs: 100 } } });
    alerts.recordSyncLag(500);
    t = 120_000;
    expect(alerts.evaluate().map((a) => a.name)).toEqual(['sync_lag']);
  });

  it('honours overridden and disabled rules and rejects bad ones', () => {
    const alerts = createAlerts({
      now: () => 0,
      rules: { rotationFailure: false, verifyFailureRate: { threshold: 0.5, minSamples: 2 } },
    });
    alerts.recordRotationFailure();
    alerts.recordVerify(false);
    alerts.recordVerify(true);
    expect(alerts.evaluate()).toEqual([]);
    alerts.recordVerify(false);
    expect(alerts.evaluate().map((a) => a.name)).toEqual(['verify_failure_rate']);
    expect(() => createAlerts({ rules: { verifyFailureRate: { threshold: 2, minSamples: 1 } } })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    );
    expect(() => createAlerts({ webhook: { url: 'ftp://secret@example.test' } })).toThrow(
      expect.objectContaining({ code: 'config_invalid', message: expect.not.stringContaining('secret') }),
    );
  });
});

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function startServer(handler: Handler): Promise<string> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => handler(req, res, body));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

function rotationAlert(webhook: Parameters<typeof createAlerts>[0]) {
  const alerts = createAlerts({ now: () => 0, ...webhook });
  alerts.recordRotationFailure();
  expect(alerts.evaluate()).toHaveLength(1);
  return alerts;
}

describe('alert webhook', () => {
  it('POSTs the alert as JSON with the configured headers', async () => {
    const received: { body: unknown; headers: IncomingMessage['headers']; method?: string }[] = [];
    const url = await startServer((req, res, body) => {
      received.push({ body: JSON.parse(body), headers: req.headers, method: req.method });
      res.writeHead(204).end();
    });
    const alerts = rotationAlert({ webhook: { url, headers: { 'x-hook-token': 'abc' } } });
    await alerts.flush();
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hook-token': 'abc' },
      body: { name: 'rotation_failure', severity: 'critical', source: 'keyward' },
    });
    expect(alerts.stats()).toMatchObject({ webhookDelivered: 1, webhookFailed: 0 });
  });

  it('retries after a failing first attempt and then succeeds', async () => {
    let calls = 0;
    const url = await startServer((_req, res) => {
      calls += 1;
      res.writeHead(calls === 1 ? 503 : 200).end();
    });
    const alerts = rotationAlert({ webhook: { url, retries: 2, retryDelayMs: 0 } });
    await alerts.flush();
    expect(calls).toBe(2);
    expect(alerts.stats()).toMatchObject({ webhookDelivered: 1, webhookFailed: 0 });
  });

  it('gives up on a receiver that never answers, within timeout × attempts, without throwing', async () => {
    let calls = 0;
    const url = await startServer(() => {
      calls += 1; // never responds
    });
    const errors: string[] = [];
    const alerts = rotationAlert({
      webhook: { url, timeoutMs: 100, retries: 1, retryDelayMs: 0 },
      onWebhookError: (_alert, error) => errors.push(error),
    });
    const started = performance.now();
    await alerts.flush();
    const elapsed = performance.now() - started;
    expect(calls).toBe(2);
    expect(errors).toEqual(['timeout']);
    expect(elapsed).toBeLessThan(2_000);
    expect(alerts.stats()).toMatchObject({ webhookDelivered: 0, webhookFailed: 1 });
  });

  it('does not retry a 4xx answer and reports a refused connection', async () => {
    let calls = 0;
    const url = await startServer((_req, res) => {
      calls += 1;
      res.writeHead(400).end();
    });
    const errors: string[] = [];
    const alerts = rotationAlert({
      webhook: { url, retryDelayMs: 0 },
      onWebhookError: (_a, e) => errors.push(e),
    });
    await alerts.flush();
    expect(calls).toBe(1);
    expect(errors).toEqual(['HTTP 400']);

    const closed = await startServer(() => {});
    const server = servers.pop()!;
    await new Promise((resolve) => server.close(resolve));
    const offline = rotationAlert({
      webhook: { url: closed, retries: 1, retryDelayMs: 0 },
      onWebhookError: (_a, e) => errors.push(e),
    });
    await offline.flush();
    expect(errors[1]).toMatch(/^network error/);
  });
});
