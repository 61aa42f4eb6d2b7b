import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { startTestIdp, type TestIdp } from '../../../testing/src/idp.js';
import { createIssuerVerifier, type TrustedIssuer } from './issuers.js';

// A real local IdP (node:http on loopback, jose keys): discovery, JWKS, rotation, outages.

const idps: TestIdp[] = [];
afterEach(async () => {
  await Promise.all(idps.splice(0).map((idp) => idp.close()));
});
async function idp(options: { maxAgeSec?: number } = {}): Promise<TestIdp> {
  const started = await startTestIdp(options);
  idps.push(started);
  return started;
}
function config(p: TestIdp, extra: Partial<TrustedIssuer> = {}): TrustedIssuer {
  return { issuer: p.issuer, discovery: true, allowInsecure: true, audience: p.audience, ...extra };
}
function fakeToken(iss: string, kid: string): string {
  const enc = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${enc({ alg: 'ES256', kid })}.${enc({ iss, sub: 'x', exp: 4e9 })}.${randomBytes(64).toString('base64url')}`;
}

describe('trusted issuers against a real local IdP', () => {
  it('finds the JWKS by discovery and verifies the IdP’s tokens', async () => {
    const p = await idp();
    const key = await p.addKey();
    const verifier = createIssuerVerifier({ issuers: [config(p)] });
    await expect(verifier.verify(await key.sign({ scp: ['read'] }))).resolves.toMatchObject({
      issuer: p.issuer,
      kid: key.kid,
      payload: { sub: 'idp-user', scp: ['read'] },
    });
    await verifier.verify(await key.sign());
    expect(p.counts).toEqual({ discovery: 1, jwks: 1 });
    expect(verifier.issuers).toEqual([p.issuer]);
  });

  it('rejects a wrong audience, an unknown issuer and an algorithm off the allow-list', async () => {
    const p = await idp();
    const es = await p.addKey({ alg: 'ES256' });
    const rs = await p.addKey({ alg: 'RS256' });
    const verifier = createIssuerVerifier({ issuers: [config(p, { algorithms: ['ES256'] })] });
    await expect(verifier.verify(await es.sign())).resolves.toMatchObject({ kid: es.kid });
    expect(await codeOf(verifier.verify(await es.sign({}, { aud: 'other' })))).toBe('token_claim_invalid');
    const untrusted = await verifier
      .verify(await es.sign({}, { iss: 'https://evil.example' }))
      .catch((e) => e);
    expect(untrusted).toMatchObject({ code: 'token_claim_invalid', details: { reason: 'issuer_untrusted' } });
    const offList = await verifier.verify(await rs.sign()).catch((e) => e);
    expect(offList).toMatchObject({ code: 'token_invalid', details: { reason: 'alg_not_allowed' } });
  });

  it('picks up a key the IdP starts signing with one cooldown (1 s) later, counted in fetches', async () => {
    const p = await idp();
    const a = await p.addKey();
    let t = Date.now();
    const verifier = createIssuerVerifier({ issuers: [config(p)], now: () => t });
    await verifier.verify(await a.sign());
    const b = await p.addKey(); // rotation at the IdP: b signs at once
    const tokenB = await b.sign();
    expect(await codeOf(verifier.verify(tokenB))).toBe('token_invalid'); // same instant: no refetch yet
    expect(p.counts.jwks).toBe(1);
    t += 999;
    expect(await codeOf(verifier.verify(tokenB))).toBe('token_invalid'); // still inside the 1 s cooldown
    expect(p.counts.jwks).toBe(1);
    t += 1;
    await expect(verifier.verify(tokenB)).resolves.toMatchObject({ kid: b.kid });
    expect(p.counts.jwks).toBe(2);
  });

  it('N tokens with unknown kids cost one fetch per cooldown, single-flight', async () => {
    const p = await idp();
    await p.addKey();
    let t = Date.now();
    const verifier = createIssuerVerifier({ issuers: [config(p)], now: () => t });
    const flood = async (n: number) => {
      const codes = await Promise.all(
        Array.from({ length: n }, () =>
          codeOf(verifier.verify(fakeToken(p.issuer, randomBytes(8).toString('hex')))),
        ),
      );
      expect(new Set(codes)).toEqual(new Set(['token_invalid']));
    };
    await flood(500);
    expect(p.counts.jwks).toBe(1);
    await flood(500);
    expect(p.counts.jwks).toBe(1);
    t += 1000;
    await flood(500);
    expect(p.counts.jwks).toBe(2);
    expect(p.counts.discovery).toBe(1);
  });

  it('refuses a huge JWKS while it streams, before the IdP has sent it', async () => {
    const p = await idp();
    p.setMode('huge');
    const verifier = createIssuerVerifier({ issuers: [config(p)], maxResponseBytes: 64 * 1024 });
    const key = await p.addKey();
    expect(await codeOf(verifier.verify(await key.sign()))).toBe('issuer_unavailable');
    for (let i = 0; i < 200 && !p.huge.closedByClient; i++) await new Promise((r) => setTimeout(r, 10));
    expect(p.huge.closedByClient).toBe(true);
    // The endless body is 256 MiB; the client hung up after 64 KiB (plus what the sockets buffer).
    expect(p.huge.written).toBeLessThan(32 * 1024 * 1024);
  });

  it('refuses http: unless allowInsecure, for a JWKS URI and for discovery', async () => {
    const p = await idp();
    for (const issuer of [
      { issuer: p.issuer, jwksUri: p.jwksUri },
      { issuer: p.issuer, discovery: true },
      { issuer: p.issuer, jwksUri: 'ftp://example.com/certs', allowInsecure: true },
      { issuer: p.issuer },
      { issuer: p.issuer, jwksUri: p.jwksUri, discovery: true, allowInsecure: true },
    ]) {
      expect(codeOf(() => createIssuerVerifier({ issuers: [issuer] }))).toBe('config_invalid');
    }
    expect(
      codeOf(() =>
        createIssuerVerifier({ issuers: [{ issuer: p.issuer, jwksUri: p.jwksUri, allowInsecure: true }] }),
      ),
    ).toBeUndefined();
    expect(p.counts).toEqual({ discovery: 0, jwks: 0 });
  });

  it('an IdP that is down or serves garbage with nothing cached: issuer_unavailable, bounded retries', async () => {
    for (const mode of ['down', 'garbage'] as const) {
      const p = await idp();
      const key = await p.addKey();
      p.setMode(mode);
      let t = Date.now();
      const verifier = createIssuerVerifier({ issuers: [config(p)], now: () => t });
      for (let i = 0; i < 5; i++)
        expect(await codeOf(verifier.verify(await key.sign()))).toBe('issuer_unavailable');
      expect(p.counts.discovery).toBe(1); // one attempt per cooldown
      p.setMode('ok');
      t += 1000;
      await expect(verifier.verify(await key.sign())).resolves.toMatchObject({ kid: key.kid });
    }
  });

  it('an IdP that goes down after its keys were cached: its tokens are still accepted', async () => {
    const p = await idp({ maxAgeSec: 60 });
    const key = await p.addKey();
    let t = Date.now();
    const verifier = createIssuerVerifier({ issuers: [config(p)], now: () => t });
    await verifier.verify(await key.sign());
    p.setMode('down');
    t += 120_000; // past max-age: the refetch fails, the cached key keeps serving
    for (let i = 0; i < 3; i++) {
      await expect(verifier.verify(await key.sign())).resolves.toMatchObject({ kid: key.kid });
    }
    expect(p.counts.jwks).toBe(2);
    await p.close();
    t += 60_000;
    await expect(verifier.verify(await key.sign())).resolves.toMatchObject({ kid: key.kid });
  });

  it('honours Cache-Control max-age: no refetch while fresh, one after', async () => {
    const p = await idp({ maxAgeSec: 60 });
    const key = await p.addKey();
    let t = Date.now();
    const verifier = createIssuerVerifier({ issuers: [config(p)], now: () => t });
    await verifier.verify(await key.sign());
    t += 59_000;
    await verifier.verify(await key.sign());
    expect(p.counts.jwks).toBe(1);
    t += 2000;
    await verifier.verify(await key.sign());
    expect(p.counts.jwks).toBe(2);
  });
});
