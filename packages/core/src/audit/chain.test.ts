import { describe, expect, it } from 'vitest';
import { AUDIT_GENESIS_HASH, canonicalJson, hashAuditEvent, verifyAuditChain } from './chain.js';
import type { AuditEvent } from './events.js';
import { createAuditLog } from './log.js';
import { callbackSink } from './sinks.js';

function chainOf(count: number): { lines: string[]; events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  let t = Date.parse('2025-01-01T00:00:00Z');
  const audit = createAuditLog({ sinks: [callbackSink((e) => void events.push(e))], now: () => t++ });
  for (let i = 0; i < count; i++) {
    audit.emit({
      type: 'token.issued',
      sub: `user-${i}`,
      jti: `jti-${i}`,
      actor: { type: 'user', id: `u${i}` },
    });
  }
  return { lines: events.map((e) => JSON.stringify(e)), events };
}

describe('canonicalJson', () => {
  it('sorts keys at every level and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: undefined } })).toBe(
      '{"a":{"d":[2,{"y":2,"z":1}]},"b":1}',
    );
  });
});

describe('verifyAuditChain', () => {
  it('accepts an intact chain that starts at the genesis hash', () => {
    const { lines, events } = chainOf(100);
    expect(events[0]?.prevHash).toBe(AUDIT_GENESIS_HASH);
    expect(verifyAuditChain(lines)).toEqual({ ok: true, count: 100 });
    expect(verifyAuditChain(`${lines.join('\n')}\n`)).toEqual({ ok: true, count: 100 });
  });

  it('names exactly the line whose field was edited', () => {
    const { lines, events } = chainOf(100);
    const edited = JSON.parse(lines[50]!) as Record<string, unknown>;
    edited.sub = 'attacker';
    lines[50] = JSON.stringify(edited);
    const result = verifyAuditChain(lines);
    expect(result).toMatchObject({ ok: false, index: 50, eventId: events[50]?.id });
    expect(result.ok === false && result.reason).toMatch(/edited/);
  });

  it('catches an edit that also recomputes hash at the next line', () => {
    const { lines } = chainOf(10);
    const edited = JSON.parse(lines[4]!) as Record<string, unknown>;
    edited.sub = 'attacker';
    // A forger who recomputes this line's hash still breaks the link from the line after.
    edited.hash = hashAuditEvent(edited);
    lines[4] = JSON.stringify(edited);
    expect(verifyAuditChain(lines)).toMatchObject({ ok: false, index: 5 });
  });

  it('names the line after a deleted line', () => {
    const { lines } = chainOf(100);
    lines.splice(30, 1);
    const result = verifyAuditChain(lines);
    expect(result).toMatchObject({ ok: false, index: 30 });
    expect(result.ok === false && result.reason).toMatch(/removed/);
  });

  it('catches reordered lines, a deleted first line and bad JSON', () => {
    const swapped = chainOf(10).lines;
    [swapped[3], swapped[4]] = [swapped[4]!, swapped[3]!];
    expect(verifyAuditChain(swapped)).toMatchObject({ ok: false, index: 3 });

    const headless = chainOf(5).lines.slice(1);
    expect(verifyAuditChain(headless)).toMatchObject({ ok: false, index: 0 });

    const torn = chainOf(5).lines;
    torn[2] = torn[2]!.slice(0, 40);
    expect(verifyAuditChain(torn)).toMatchObject({ ok: false, index: 2, reason: 'line is not valid JSON' });
  });

  it('verifies a continuation file from a given previous hash', () => {
    const { lines, events } = chainOf(6);
    expect(verifyAuditChain(lines.slice(3), { expectedPrevHash: events[2]!.hash })).toEqual({
      ok: true,
      count: 3,
    });
  });
});
