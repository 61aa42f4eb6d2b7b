import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { KeywardError } from '../errors.js';

/**
 * `prevHash` of the first event of a fresh chain.
 *
 * @example
 * ```ts
 * verifyAuditChain(lines, { expectedPrevHash: AUDIT_GENESIS_HASH });
 * ```
 */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/**
 * JSON with object keys sorted at every level and `undefined` members left out, so that an
 * event hashes the same before it is written and after it is read back.
 *
 * @example
 * ```ts
 * canonicalJson({ b: 1, a: [true, { d: 2, c: 3 }] }); // '{"a":[true,{"c":3,"d":2}],"b":1}'
 * ```
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  const record = value as Record<string, unknown>;
  const members: string[] = [];
  for (const name of Object.keys(record).sort()) {
    const member = record[name];
    if (member === undefined) continue;
    members.push(`${JSON.stringify(name)}:${canonicalJson(member)}`);
  }
  return `{${members.join(',')}}`;
}

/**
 * sha256 (hex) of the canonical JSON of `event` without its `hash` member.
 *
 * @example
 * ```ts
 * const intact = hashAuditEvent(JSON.parse(line)) === JSON.parse(line).hash;
 * ```
 */
export function hashAuditEvent(event: Record<string, unknown>): string {
  const { hash: _ignored, ...rest } = event;
  return createHash('sha256').update(canonicalJson(rest), 'utf8').digest('hex');
}

/** The result of {@link verifyAuditChain}: the count of events, or the first broken link. */
export type AuditChainResult =
  | { ok: true; count: number }
  | { ok: false; index: number; eventId?: string; reason: string };

/** Options for {@link verifyAuditChain}. */
export interface VerifyAuditChainOptions {
  /** `prevHash` the first event must carry. Default {@link AUDIT_GENESIS_HASH}; pass the last
   * hash of the previous file to verify a rotated log file. */
  expectedPrevHash?: string;
}

/** Checks lines one by one; shared by the sync and the streaming verifier. */
class ChainChecker {
  private expected: string;
  count = 0;

  constructor(expectedPrevHash: string) {
    this.expected = expectedPrevHash;
  }

  check(line: string, index: number): AuditChainResult | undefined {
    if (line.trim() === '') return undefined;
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      return { ok: false, index, reason: 'line is not valid JSON' };
    }
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      return { ok: false, index, reason: 'line is not a JSON object' };
    }
    const record = event as Record<string, unknown>;
    const eventId = typeof record.id === 'string' ? record.id : undefined;
    const fail = (reason: string): AuditChainResult =>
      eventId === undefined ? { ok: false, index, reason } : { ok: false, index, eventId, reason };
    if (typeof record.hash !== 'string' || typeof record.prevHash !== 'string') {
      return fail('event has no hash or prevHash');
    }
    if (hashAuditEvent(record) !== record.hash) return fail('hash does not match the event (edited)');
    if (record.prevHash !== this.expected) {
      return fail('prevHash does not match the previous event (line removed, inserted or reordered)');
    }
    this.expected = record.hash;
    this.count += 1;
    return undefined;
  }
}

/**
 * Verifies a hash-chained audit log given as lines (blank lines are skipped). `index` in a
 * failure is the 0-based position of the first line that does not fit the chain: an edited
 * line is reported itself, a removed line at the line that followed it.
 *
 * @example
 * ```ts
 * const result = verifyAuditChain(readFileSync('audit.jsonl', 'utf8'));
 * if (!result.ok) console.error(`audit log broken at line ${result.index + 1}: ${result.reason}`);
 * ```
 */
export function verifyAuditChain(
  lines: Iterable<string> | string,
  options: VerifyAuditChainOptions = {},
): AuditChainResult {
  const checker = new ChainChecker(options.expectedPrevHash ?? AUDIT_GENESIS_HASH);
  // A whole file's text is an Iterable<string> of characters; split it into lines instead.
  const source = typeof lines === 'string' ? lines.split('\n') : lines;
  let index = 0;
  for (const line of source) {
    const failure = checker.check(line, index);
    if (failure !== undefined) return failure;
    index += 1;
  }
  return { ok: true, count: checker.count };
}

/**
 * Streams a JSON-lines audit file and verifies its hash chain (see {@link verifyAuditChain}).
 * Rejects with `audit_file_invalid` when the file cannot be read.
 *
 * @example
 * ```ts
 * const result = await verifyAuditFile('/var/log/keyward/audit.jsonl');
 * ```
 */
export async function verifyAuditFile(
  path: string,
  options: VerifyAuditChainOptions = {},
): Promise<AuditChainResult> {
  const checker = new ChainChecker(options.expectedPrevHash ?? AUDIT_GENESIS_HASH);
  const input = createReadStream(path, { encoding: 'utf8' });
  const reader = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let index = 0;
  try {
    for await (const line of reader) {
      const failure = checker.check(line, index);
      if (failure !== undefined) return failure;
      index += 1;
    }
  } catch (err) {
    throw new KeywardError('audit_file_invalid', 'Cannot read the audit file', { cause: err });
  } finally {
    reader.close();
    input.destroy();
  }
  return { ok: true, count: checker.count };
}
