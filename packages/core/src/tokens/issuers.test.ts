import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { createIssuerVerifier } from './issuers.js';
import { parseMaxAge } from './jwks-client.js';

const ISS = 'https://sso.example.test/realms/main';

interface Idp {
  url: string;
  fetches: () => number;
  publish: (keys: JWK[]) => void;
  down: (isDown: boolean) => void;
  close: () => Promise<void>;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function startIdp(maxAge = 300): Promise<Idp> {
  let keys: JWK[] = [];
  let fetches = 0;
  let isDown = false;
  const server = createServer((_req, res) => {
    fetches += 1;
    if (isDown) {
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': `public, max-age=${maxAge}` });
    res.end(JSON.stringify({ keys }));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/certs`,
    fetches: () => fetches,
    publish: (next) => {
      keys = next;
    },
    down: (d) => {
      isDown = d;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function signer(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const sign = (claims: Record<string, unknown> = {}, iss = ISS, at = Date.now()) =>
    new SignJWT({ sub: 'user_1', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuer(iss)
      .setAudience('api')
      .setIssuedAt(Math.floor(at / 1000))
      .setExpirationTime(Math.floor(at / 1000) + 300)
      .sign(privateKey);
  return { jwk, sign };
}

function fakeToken(kid: string): string {
  const enc = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${enc({ alg: 'ES256', kid })}.${enc({ iss: ISS, sub: 'x', exp: 4e9 })}.${randomBytes(64).toString('base64url')}`;
}

describe('createIssuerVerifier', () => {
  it('verifies a token of a trusted issuer and names the issuer', async () => {
    const idp = await startIdp();
    const a = await signer('a');
    idp.publish([a.jwk]);
    const verifier = createIssuerVerifier({
      issuers: [{ issuer: ISS, jwksUri: idp.url, allowInsecure: true, audience: 'api' }],
    });
    const result = await verifier.verify(await a.sign({ scope: 'read' }));
    expect(result).toMatchObject({ issuer: ISS, kid: 'a', payload: { sub: 'user_1', scope: 'read' } });
  });

  it('10,000 tokens with random unknown kids cost at most one fetch per cooldown', async () => {
    const idp = await startIdp();
    idp.publish([(await signer('a')).jwk]);
    let t = Date.now();
    const verifier = createIssuerVerifier({
      issuers: [{ issuer: ISS, jwksUri: idp.url, allowInsecure: true }],
      cooldownMs: 30_000,
      now: () => t,
    });
    const flood = async () => {
      for (let batch = 0; batch < 10; batch++) {
        const codes = await Promise.all(
          Array.from({ length: 1000 }, () =>
            codeOf(verifier.verify(fakeToken(randomBytes(8).toString('hex')))),
          ),
        );
        expect(new Set(codes)).toEqual(new Set(['token_invalid']));
      }
    };
    await flood();
    expect(idp.fetches()).toBe(1);
    t += 30_001;
    await flood();
    expect(idp.fetches()).toBe(2);
  });

  it('accepts a key the IdP adds, after the (default 1 s) cooldown, without restart', async () => {
    const idp = await startIdp();
    const [a, b] = [await signer('a'), await signer('b')];
    idp.publish([a.jwk]);
    let t = Date.now();
    const verifier = createIssuerVerifier({
      issuers: [{ issuer: ISS, jwksUri: idp.url, allowInsecure: true }],
      now: () => t,
    });
    await verifier.verify(await a.sign({}, ISS, t));
    idp.publish([a.jwk, b.jwk]);
    expect(await codeOf(verifier.verify(await b.sign({}, ISS, t)))).toBe('token_invalid'); // within cooldown
    t += 1000;
    await expect(verifier.verify(await b.sign({}, ISS, t))).resolves.toMatchObject({ kid: 'b' });
    expect(idp.fetches()).toBe(2);
  });

  it('keeps verifying with cached keys while the IdP is down', async () => {
    const idp = await startIdp(60);
    const a = await signer('a');
    idp.publish([a.jwk]);
    let t = Date.now();
    const verifier = createIssuerVerifier({
      issuers: [{ issuer: ISS, jwksUri: idp.url, allowInsecure: true }],
      now: () => t,
    });
    await verifier.verify(await a.sign({}, ISS, t));
    idp.down(true);
    t += 120_000; // past max-age: a refetch is attempted, fails, and the stale key is served
    await expect(verifier.verify(await a.sign({}, ISS, t))).resolves.toMatchObject({ kid: 'a' });
    await expect(verifier.verify(await a.sign({}, ISS, t))).resolves.toMatchObject({ kid: 'a' });
    expect(idp.fetches()).toBe(2);
    await idp.close();
    t += 60_000;
    await expect(verifier.verify(await a.sign({}, ISS, t))).resolves.toMatchObject({ kid: 'a' });
  });

  it('with no keys ever fetched and the IdP down, rejects with issuer_unavailable (a 503, not a 401)', async () => {
    const idp = await startIdp();
    idp.down(true);
    const verifier = createIssuerVerifier({
      issuers: [{ issuer: ISS, jwksUri: idp.url, allowInsecure: true }],
    });
    expect(await codeOf(verifier.verify(fakeToken('a')))).toBe('issuer_unavailable');
  });

  it('rejects a wrong issuer, a wrong audience, a forged signature and garbage', async () => {
    const idp = await startIdp();
    const a = await signer('a');
    idp.publish([a.jwk]);
    const verifier = createIssuerVerifier({
      issuers: [{ issuer: ISS, jwksUri: idp.url, allowInsecure: true, audience: 'other-api' }],
    });
    expect(await codeOf(verifier.verify(await a.sign({}, 'https://evil.example')))).toBe(
      'token_claim_invalid',
    );
    expect(await codeOf(verifier.verify(await a.sign()))).toBe('token_claim_invalid');
    const good = await a.sign();
    const forged = `${good.slice(0, good.lastIndexOf('.'))}.${randomBytes(64).toString('base64url')}`;
    const open = createIssuerVerifier({ issuers: [{ issuer: ISS, jwksUri: idp.url, allowInsecure: true }] });
    expect(await codeOf(open.verify(forged))).toBe('token_signature_invalid');
    for (const bad of ['', 'a.b.c', 'x'.repeat(20_000), 42 as unknown as string]) {
      expect(await codeOf(open.verify(bad))).toMatch(/token_malformed|token_too_large/);
    }
  });

  it('refuses HMAC algorithms in configuration', () => {
    expect(() =>
      createIssuerVerifier({ issuers: [{ issuer: ISS, jwksUri: 'https://x', algorithms: ['HS256'] }] }),
    ).toThrow(expect.objectContaining({ code: 'config_invalid' }));
  });

  it('parses Cache-Control max-age', () => {
    expect(parseMaxAge('public, max-age=600')).toBe(600_000);
    expect(parseMaxAge('no-store')).toBe(0);
    expect(parseMaxAge(null)).toBeUndefined();
  });
});
