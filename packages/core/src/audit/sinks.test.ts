import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyAuditFile } from './chain.js';
import type { AuditEventInput } from './events.js';
import { jsonlFileSink } from './jsonl-file-sink.js';
import { createAuditLog } from './log.js';
import { createAuditLogger, pinoSink } from './sinks.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyward-audit-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('jsonlFileSink', () => {
  it('resumes the hash chain across two audit logs on one file', async () => {
    const path = join(dir, 'audit.jsonl');
    const first = createAuditLog({ sinks: [jsonlFileSink(path)], instanceId: 'a' });
    for (let i = 0; i < 3; i++) first.emit({ type: 'key.generated', kid: `k${i}`, use: 'sig', alg: 'EdDSA' });
    await first.close();

    const second = createAuditLog({ sinks: [jsonlFileSink(path)], instanceId: 'b' });
    const resumed = second.emit({ type: 'key.activated', kid: 'k2', use: 'sig' });
    expect(resumed?.prevHash).toBe(first.lastHash);
    second.emit({ type: 'key.retired', kid: 'k0' });
    await second.close();

    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines.map((l) => JSON.parse(l).actor.instanceId)).toEqual(['a', 'a', 'a', 'b', 'b']);
    expect(await verifyAuditFile(path)).toEqual({ ok: true, count: 5 });
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('lets verifyAuditFile name the edited line of a 100-line file, and the line after a deletion', async () => {
    const path = join(dir, 'audit.jsonl');
    const audit = createAuditLog({ sinks: [jsonlFileSink(path)] });
    for (let i = 0; i < 100; i++) audit.emit({ type: 'sync.lag', lagMs: i });
    await audit.flush();
    await audit.close();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');

    const edited = [...lines];
    edited[42] = edited[42]!.replace('"lagMs":42', '"lagMs":1');
    writeFileSync(path, `${edited.join('\n')}\n`);
    expect(await verifyAuditFile(path)).toMatchObject({
      ok: false,
      index: 42,
      eventId: JSON.parse(lines[42]!).id,
    });

    writeFileSync(path, `${lines.filter((_, i) => i !== 70).join('\n')}\n`);
    expect(await verifyAuditFile(path)).toMatchObject({
      ok: false,
      index: 70,
      eventId: JSON.parse(lines[71]!).id,
    });
  });

  it('refuses to continue a file whose last line is torn, and reports an unreadable file', async () => {
    const path = join(dir, 'torn.jsonl');
    writeFileSync(path, '{"id":"x","hash":"ab');
    expect(() => jsonlFileSink(path)).toThrow(expect.objectContaining({ code: 'audit_file_invalid' }));
    await expect(verifyAuditFile(join(dir, 'missing.jsonl'))).rejects.toMatchObject({
      code: 'audit_file_invalid',
    });
  });
});

describe('pinoSink', () => {
  function capture() {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(...chunk.toString().trimEnd().split('\n'));
        done();
      },
    });
    return { lines, stream };
  }

  it('writes each event as one JSON line with the event fields under `audit`', async () => {
    const { lines, stream } = capture();
    const audit = createAuditLog({ sinks: [pinoSink(createAuditLogger(stream))], instanceId: 'i-9' });
    const event = audit.emit({ type: 'apikey.revoked', apiKeyId: 'ak_1', reason: 'leaked' });
    await audit.flush();
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0]!);
    expect(record).toMatchObject({ level: 30, msg: 'apikey.revoked', name: 'keyward-audit' });
    expect(record.audit).toEqual(JSON.parse(JSON.stringify(event)));
  });

  it('redacts credential-named fields of anything else logged through the audit logger', () => {
    const { lines, stream } = capture();
    const logger = createAuditLogger(stream);
    logger.info({ headers: { authorization: 'Bearer abc' }, password: 'hunter2' }, 'request');
    const text = lines.join('\n');
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('Bearer abc');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      password: '[redacted]',
      headers: { authorization: '[redacted]' },
    });
  });

  it('never puts a JWT passed by mistake into the log line', async () => {
    const { lines, stream } = capture();
    const audit = createAuditLog({ sinks: [pinoSink(createAuditLogger(stream))] });
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl';
    audit.emit({ type: 'access.denied', code: 'token_invalid', reason: jwt } as AuditEventInput);
    await audit.flush();
    expect(lines.join('')).not.toContain(jwt);
    expect(JSON.parse(lines[0]!).audit.scrubbed).toEqual(['reason']);
  });
});
