import { describe, expect, it } from 'vitest';
import { isKeywardError } from '../errors.js';
import { verifyAuditChain } from './chain.js';
import { type AuditEvent, type AuditEventInput, fingerprint } from './events.js';
import { createAuditLog } from './log.js';
import { callbackSink } from './sinks.js';

const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';

function collect(
  options: { now?: () => number; deniedRateLimit?: { perWindow: number; windowMs: number } } = {},
) {
  const events: AuditEvent[] = [];
  const audit = createAuditLog({
    sinks: [callbackSink((e) => void events.push(e))],
    instanceId: 'i-1',
    ...options,
  });
  return { audit, events };
}

describe('createAuditLog', () => {
  it('fills id, time, actor with instanceId, default outcome and chains hashes', () => {
    const { audit, events } = collect({ now: () => Date.parse('2025-03-01T12:00:00Z') });
    const rotated = audit.emit({
      type: 'key.rotated',
      kid: 'k2',
      use: 'sig',
      rotationType: 'emergency',
      previousKid: 'k1',
      actor: { type: 'operator', id: 'alice' },
    });
    const denied = audit.emit({ type: 'access.denied', code: 'token_expired', via: 'jwt' });
    expect(rotated).toMatchObject({
      type: 'key.rotated',
      rotationType: 'emergency',
      time: '2025-03-01T12:00:00.000Z',
      actor: { type: 'operator', id: 'alice', instanceId: 'i-1' },
      outcome: 'success',
    });
    expect(rotated?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(denied).toMatchObject({ outcome: 'denied', actor: { type: 'system', instanceId: 'i-1' } });
    expect(denied?.prevHash).toBe(rotated?.hash);
    expect(events).toEqual([rotated, denied]);
    expect(audit.lastHash).toBe(denied?.hash);
  });

  it('fingerprints tokens as sha256: plus 16 hex digits', () => {
    expect(fingerprint(JWT)).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(fingerprint(JWT)).toBe(fingerprint(JWT));
    expect(fingerprint(JWT)).not.toBe(fingerprint(`${JWT}x`));
  });

  it('drops a JWT, a kw_ API key, an overlong string and credential-named fields, and counts them', () => {
    const { audit, events } = collect();
    const input = {
      type: 'token.revoked',
      level: 'token',
      reason: `Bearer ${JWT}`,
      sub: 'kw_abc123_0123456789abcdefghij',
      jti: 'x'.repeat(513),
      family: 'fam-1',
      token: 'short-but-named-token',
      actor: { type: 'user', id: JWT },
    } as unknown as AuditEventInput;
    const event = audit.emit(input);
    expect(event).toMatchObject({
      level: 'token',
      family: 'fam-1',
      actor: { type: 'user', instanceId: 'i-1' },
    });
    expect([...(event?.scrubbed ?? [])].sort()).toEqual(['actor.id', 'jti', 'reason', 'sub', 'token']);
    const text = JSON.stringify(events);
    expect(text).not.toContain(JWT);
    expect(text).not.toContain('kw_abc123');
    expect(text).not.toContain('short-but-named-token');
    expect(Object.isFrozen(event) && Object.isFrozen(event?.scrubbed)).toBe(true);
    expect(audit.stats().scrubbedFields).toBe(5);
    expect(verifyAuditChain(events.map((e) => JSON.stringify(e))).ok).toBe(true);
  });

  it('keeps ordinary dotted values such as a kid or a scope', () => {
    const { audit } = collect();
    const event = audit.emit({
      type: 'token.issued',
      sub: 'u.1',
      scope: 'read:a.b write:c',
      kid: 'k.2025.01',
    });
    expect(event).toMatchObject({ sub: 'u.1', scope: 'read:a.b write:c', kid: 'k.2025.01' });
    expect(event?.scrubbed).toBeUndefined();
  });

  it('rate-limits access.denied under a flood and summarises when the window ends', () => {
    let t = 1_000_000;
    const { audit, events } = collect({ now: () => t, deniedRateLimit: { perWindow: 5, windowMs: 1_000 } });
    const results = [];
    for (let i = 0; i < 1_000; i++) {
      results.push(audit.emit({ type: 'access.denied', code: i % 2 ? 'token_expired' : 'token_invalid' }));
      t += 0.5;
    }
    expect(results.filter((r) => r !== undefined)).toHaveLength(5);
    // Other events are never limited.
    expect(audit.emit({ type: 'key.retired', kid: 'k0' })).toBeDefined();
    expect(events).toHaveLength(6);
    t += 1_000;
    audit.emit({ type: 'sync.lag', lagMs: 12 });
    const summary = events.at(-2);
    expect(summary).toMatchObject({ type: 'access.denied', suppressed: 995, outcome: 'denied' });
    expect(summary).toMatchObject({ suppressedByCode: { token_invalid: 497, token_expired: 498 } });
    expect(events.at(-1)?.type).toBe('sync.lag');
    expect(audit.stats()).toMatchObject({ rateLimited: 995, emitted: 8 });
    // The next window admits denials again.
    expect(audit.emit({ type: 'access.denied', code: 'token_invalid' })).toBeDefined();
    expect(verifyAuditChain(events.map((e) => JSON.stringify(e))).ok).toBe(true);
  });

  it('emits the pending summary on close', async () => {
    const t = 0;
    const { audit, events } = collect({ now: () => t, deniedRateLimit: { perWindow: 1, windowMs: 10_000 } });
    audit.emit({ type: 'access.denied', code: 'api_key_invalid' });
    audit.emit({ type: 'access.denied', code: 'api_key_invalid' });
    await audit.close();
    expect(events.at(-1)).toMatchObject({ suppressed: 1, code: 'api_key_invalid' });
    expect(audit.emit({ type: 'key.retired', kid: 'k' })).toBeUndefined();
    expect(audit.stats().droppedAfterClose).toBe(1);
  });

  it('counts sink failures without throwing into the caller', async () => {
    const errors: string[] = [];
    const good: AuditEvent[] = [];
    const audit = createAuditLog({
      sinks: [
        callbackSink(() => {
          throw new Error('disk full');
        }),
        callbackSink(async () => {
          throw new Error('network');
        }),
        callbackSink((e) => void good.push(e)),
      ],
      onSinkError: (error) => errors.push((error as Error).message),
    });
    expect(audit.emit({ type: 'apikey.created', apiKeyId: 'ak1' })).toBeDefined();
    await audit.flush();
    expect(good).toHaveLength(1);
    expect(audit.stats().sinkErrors).toBe(2);
    expect(errors.sort()).toEqual(['disk full', 'network']);
  });

  it('rejects an unknown event type and bad options with stable codes', () => {
    const { audit } = collect();
    expect(() => audit.emit({ type: 'nope' } as unknown as AuditEventInput)).toThrow(
      expect.objectContaining({ code: 'audit_event_invalid' }),
    );
    try {
      createAuditLog({ sinks: [], deniedRateLimit: { perWindow: 0, windowMs: 1 } });
      expect.unreachable();
    } catch (err) {
      expect(isKeywardError(err, 'config_invalid')).toBe(true);
    }
  });
});
