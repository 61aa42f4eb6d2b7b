// keyward issue #11 ("Token policy"): explicit typing (RFC 8725 §3.11) through kw.jwt.sign / verify.
import { createSecretKey } from 'node:crypto';
import { decodeProtectedHeader, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../testing/src/errors.js';
import { legacyKid } from './keys/legacy.js';
import { MasterKey } from './keys/master-key.js';
import { createKeyward, type Keyward } from './keyward.js';
import { createMemoryStore } from './store/memory.js';

const MASTER = MasterKey.generate().exportText();
const SECRET = 'reference-system-shared-secret';
const HMAC = 'i'.repeat(32);
const open: Keyward[] = [];
async function make(extra: Parameters<typeof createKeyward>[0] = {}): Promise<Keyward> {
  const kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MASTER,
    logger: false,
    scheduler: false,
    syncIntervalMs: 60_000,
    ...extra,
  });
  open.push(kw);
  return kw;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((kw) => kw.close()));
});

async function hs256(secret: string, kid: string | undefined, typ: string | undefined): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: 'old-app-user' })
    .setProtectedHeader({
      alg: 'HS256',
      ...(kid === undefined ? {} : { kid }),
      ...(typ === undefined ? {} : { typ }),
    })
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .sign(createSecretKey(Buffer.from(secret)));
}

describe('regression #11: explicit typing of keyward tokens (RFC 8725 §3.11)', () => {
  it('kw.jwt.sign writes typ at+jwt by default, and kw.jwt.verify accepts it', async () => {
    const kw = await make();
    const token = kw.jwt.sign({ sub: 'u1' });
    expect(decodeProtectedHeader(token).typ).toBe('at+jwt');
    expect(kw.jwt.verify(token).payload.sub).toBe('u1');
  });

  it('regression #11: a token the keyring signs with another typ (invite+jwt) is not an access token', async () => {
    const kw = await make();
    const invite = kw.jwt.sign({ sub: 'u1' }, { typ: 'invite+jwt' });
    expect(codeOf(() => kw.jwt.verify(invite))).toBe('token_claim_invalid');
    expect(codeOf(() => kw.jwt.verify(kw.jwt.sign({ sub: 'u1' }, { typ: 'JWT' })))).toBe(
      'token_claim_invalid',
    );
    // Overridable per verify: the invite verifier asks for its own typ, and only it passes there.
    expect(kw.jwt.verify(invite, { typ: 'invite+jwt' }).payload.sub).toBe('u1');
    expect(codeOf(() => kw.jwt.verify(kw.jwt.sign({ sub: 'u1' }), { typ: 'invite+jwt' }))).toBe(
      'token_claim_invalid',
    );
  });

  it('regression #11: the legacy JWT_SECRET key accepts JWT and at+jwt, refuses a missing or other typ', async () => {
    const kw = await make({ jwtSecret: SECRET });
    const kid = await legacyKid(SECRET);
    expect(kw.jwt.verify(await hs256(SECRET, kid, 'JWT')).kid).toBe(kid);
    expect(kw.jwt.verify(await hs256(SECRET, kid, 'at+jwt')).kid).toBe(kid);
    await expect(hs256(SECRET, kid, undefined).then((t) => codeOf(() => kw.jwt.verify(t)))).resolves.toBe(
      'token_claim_invalid',
    );
    await expect(hs256(SECRET, kid, 'invite+jwt').then((t) => codeOf(() => kw.jwt.verify(t)))).resolves.toBe(
      'token_claim_invalid',
    );
  });

  it('regression #11: an imported key accepts JWT, at+jwt and a missing typ, refuses another typ', async () => {
    const kw = await make();
    await kw.keys.import({ kid: 'old', alg: 'HS256', key: HMAC, state: 'verify-only' });
    for (const typ of ['JWT', 'at+jwt', undefined]) {
      expect(kw.jwt.verify(await hs256(HMAC, 'old', typ)).kid).toBe('old');
    }
    const other = await hs256(HMAC, 'old', 'invite+jwt');
    expect(codeOf(() => kw.jwt.verify(other))).toBe('token_claim_invalid');
  });

  it('regression #11: an active imported key signs at+jwt, and its invite+jwt tokens are refused too', async () => {
    const kw = await make();
    await kw.keys.import({ kid: 'old', alg: 'HS256', key: HMAC, state: 'active' });
    const token = kw.jwt.sign({ sub: 'u2' });
    expect(decodeProtectedHeader(token)).toMatchObject({ kid: 'old', typ: 'at+jwt' });
    expect(kw.jwt.verify(token).kid).toBe('old');
    expect(codeOf(() => kw.jwt.verify(kw.jwt.sign({ sub: 'u2' }, { typ: 'invite+jwt' })))).toBe(
      'token_claim_invalid',
    );
  });
});
