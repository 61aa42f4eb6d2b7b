import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { KeyRecord } from '../keys/types.js';
import { createKeywardMetrics } from './metrics.js';

function line(text: string, series: string): number | undefined {
  const found = text.split('\n').find((l) => l.startsWith(`${series} `));
  return found === undefined ? undefined : Number(found.slice(series.length + 1));
}

describe('createKeywardMetrics', () => {
  it('exposes hot-path counts through collect at scrape time', async () => {
    const metrics = createKeywardMetrics();
    for (let i = 0; i < 3; i++) metrics.recordVerify('k1', 20_000);
    metrics.recordVerify('k2', 3_000_000);
    metrics.recordApiKeyVerify(50_000);
    metrics.recordReject('token_expired');
    metrics.recordReject('token_expired');
    const text = await metrics.text();
    expect(line(text, 'keyward_tokens_verified_total{via="jwt"}')).toBe(4);
    expect(line(text, 'keyward_tokens_verified_total{via="api_key"}')).toBe(1);
    expect(line(text, 'keyward_key_verifications_total{kid="k1"}')).toBe(3);
    expect(line(text, 'keyward_key_verifications_total{kid="k2"}')).toBe(1);
    expect(line(text, 'keyward_tokens_rejected_total{reason="token_expired"}')).toBe(2);
    // 20 µs falls in the 25 µs bucket; 3 ms in the 5 ms one.
    expect(line(text, 'keyward_verify_duration_seconds_bucket{le="0.00001"}')).toBe(0);
    expect(line(text, 'keyward_verify_duration_seconds_bucket{le="0.000025"}')).toBe(3);
    expect(line(text, 'keyward_verify_duration_seconds_bucket{le="0.0025"}')).toBe(4);
    expect(line(text, 'keyward_verify_duration_seconds_bucket{le="0.005"}')).toBe(5);
    expect(line(text, 'keyward_verify_duration_seconds_bucket{le="+Inf"}')).toBe(5);
    expect(line(text, 'keyward_verify_duration_seconds_count')).toBe(5);
    expect(line(text, 'keyward_verify_duration_seconds_sum')).toBeCloseTo(0.00311, 8);
    expect(text).toContain('# TYPE keyward_verify_duration_seconds histogram');
    expect(metrics.contentType).toMatch(/^text\/plain/);
    // A second scrape does not double-count.
    expect(line(await metrics.text(), 'keyward_tokens_verified_total{via="jwt"}')).toBe(4);
  });

  it('counts issuance, refresh, reuse, rotations, revocations and sync lag', async () => {
    const metrics = createKeywardMetrics({ prefix: 'kw_' });
    metrics.recordIssue('sig', 'EdDSA');
    metrics.recordRefresh();
    metrics.recordReuseDetected();
    metrics.recordRotation('emergency');
    metrics.recordRevocation('family');
    metrics.recordSyncLag(30);
    metrics.recordSyncLag(6_000);
    const text = await metrics.text();
    expect(line(text, 'kw_tokens_issued_total{use="sig",alg="EdDSA"}')).toBe(1);
    expect(line(text, 'kw_token_refreshes_total')).toBe(1);
    expect(line(text, 'kw_token_reuse_detected_total')).toBe(1);
    expect(line(text, 'kw_key_rotations_total{type="emergency"}')).toBe(1);
    expect(line(text, 'kw_revocations_total{level="family"}')).toBe(1);
    expect(line(text, 'kw_sync_lag_seconds_bucket{le="0.05"}')).toBe(1);
    expect(line(text, 'kw_sync_lag_seconds_bucket{le="5"}')).toBe(1);
    expect(line(text, 'kw_sync_lag_seconds_count')).toBe(2);
  });

  it('derives key counts and ages from observed records at scrape time', async () => {
    let now = Date.parse('2025-01-10T00:00:00Z');
    const metrics = createKeywardMetrics({ now: () => now });
    const day = 86_400_000;
    const records: KeyRecord[] = [
      { kid: 'a', use: 'sig', alg: 'EdDSA', state: 'active', origin: 'generated', createdAt: now - day },
      {
        kid: 'b',
        use: 'sig',
        alg: 'EdDSA',
        state: 'retiring',
        origin: 'generated',
        createdAt: now - 2 * day,
      },
      { kid: 'c', use: 'data', alg: 'fernet', state: 'active', origin: 'generated', createdAt: now },
    ];
    metrics.observeKeys(records);
    now += 1000;
    const text = await metrics.text();
    expect(line(text, 'keyward_keys{use="sig",state="active"}')).toBe(1);
    expect(line(text, 'keyward_keys{use="sig",state="retiring"}')).toBe(1);
    expect(line(text, 'keyward_keys{use="sig",state="revoked"}')).toBe(0);
    expect(line(text, 'keyward_key_age_seconds{kid="a",use="sig",state="active"}')).toBe(86_401);
    expect(line(text, 'keyward_key_age_seconds{kid="c",use="data",state="active"}')).toBe(1);
  });

  it('reports audit counters and registers into a given registry', async () => {
    const registry = new Registry();
    const metrics = createKeywardMetrics({ registry });
    metrics.observeAudit({ stats: () => ({ emitted: 7, rateLimited: 3, scrubbedFields: 1, sinkErrors: 2 }) });
    const text = await registry.metrics();
    expect(line(text, 'keyward_audit_events_total')).toBe(7);
    expect(line(text, 'keyward_audit_dropped_total{reason="rate_limited"}')).toBe(3);
    expect(line(text, 'keyward_audit_sink_errors_total')).toBe(2);
    expect(metrics.registry).toBe(registry);
  });

  it('rejects an invalid prefix with config_invalid', () => {
    expect(() => createKeywardMetrics({ prefix: 'bad-prefix' })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    );
  });
});
