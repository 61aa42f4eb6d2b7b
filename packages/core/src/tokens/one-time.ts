import { fingerprint } from '../audit/events.js';
import type { KeywardCore } from '../core.js';
import { KeywardError } from '../errors.js';
import {
  badInput,
  checkSub,
  hashIfWellFormed,
  hashToken,
  keys,
  newOpaqueToken,
  type OneTimeRecord,
  parseRecord,
} from './records.js';
import type { ConsumedOneTimeToken, OneTimeTokenInput } from './types.js';

const DEFAULT_TTL_SEC = 900;
const MAX_TTL_SEC = 30 * 24 * 3600;
const PURPOSE = /^[A-Za-z0-9._:-]{1,64}$/;

function invalid(): KeywardError {
  return new KeywardError('token_invalid', 'one-time token is unknown, used or for another purpose');
}

/** Creates a one-time token; see {@link TokenService.oneTime}. */
export async function createOneTimeToken(core: KeywardCore, input: OneTimeTokenInput): Promise<string> {
  const sub = checkSub(input?.sub);
  if (typeof input.purpose !== 'string' || !PURPOSE.test(input.purpose)) {
    throw badInput('purpose', '1 to 64 letters, digits or . _ : -');
  }
  const ttlSec = input.ttlSec ?? DEFAULT_TTL_SEC;
  if (!Number.isFinite(ttlSec) || ttlSec <= 0 || ttlSec > MAX_TTL_SEC) {
    throw badInput('ttlSec', `a number of seconds in (0, ${MAX_TTL_SEC}]`);
  }
  const data = input.data ?? {};
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw badInput('data', 'an object');
  for (const value of Object.values(data)) {
    if (!['string', 'number', 'boolean'].includes(typeof value)) {
      throw badInput('data', 'an object of strings, numbers and booleans');
    }
  }
  const token = newOpaqueToken('oneTime');
  const record: OneTimeRecord = { sub, purpose: input.purpose, data, expiresAt: core.now() + ttlSec * 1000 };
  await core.store.set(keys.oneTime(hashToken(token)), JSON.stringify(record), { ttlMs: ttlSec * 1000 });
  core.audit.emit({
    type: 'token.issued',
    sub,
    scope: `one-time:${input.purpose}`,
    tokenFingerprint: fingerprint(token),
  });
  return token;
}

/**
 * Consumes a one-time token; see {@link TokenService.consumeOneTime}. `store.take` reads and deletes
 * in one atomic step, so of any number of racing callers on any number of instances one wins. A
 * token presented for the wrong purpose is burnt too: it was leaked or misrouted.
 */
export async function consumeOneTimeToken(
  core: KeywardCore,
  token: string,
  purpose: string,
): Promise<ConsumedOneTimeToken> {
  const hash = hashIfWellFormed(token, 'oneTime');
  if (hash === undefined) throw invalid();
  const record = parseRecord<OneTimeRecord>(await core.store.take(keys.oneTime(hash)));
  if (!record || record.purpose !== purpose) throw invalid();
  if (record.expiresAt <= core.now()) {
    throw new KeywardError('token_expired', 'one-time token has expired');
  }
  return { sub: record.sub, purpose: record.purpose, data: record.data };
}
