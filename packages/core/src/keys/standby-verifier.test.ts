/**
 * A downstream resource server: jose `createRemoteJWKSet` against keyward's JWKS served over real HTTP,
 * with a warm cache. A key that starts signing must already be in that cache, so the first token it
 * signs verifies at once, with no refetch (jose would refuse an unknown kid inside its 30 s cooldown
 * with ERR_JWKS_NO_MATCHING_KEY).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { createKeyward, type Keyward } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import { MasterKey } from './master-key.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** Serves `kw.keys.jwks()` on a free port; counts the requests. */
async function serveJwks(kw: Keyward): Promise<{ url: URL; requests: () => number }> {
  let requests = 0;
  const server: Server = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    requests++;
    res.writeHead(200, {
      'content-type': 'application/jwk-set+json',
      'cache-control': `public, max-age=${Math.floor(kw.policy.jwksMaxAge / 1000)}`,
    });
    res.end(JSON.stringify(kw.keys.jwks()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return { url: new URL(`http://127.0.0.1:${port}/.well-known/jwks.json`), requests: () => requests };
}

describe('a resource server with a cached JWKS (jose createRemoteJWKSet)', () => {
  it('verifies the first token after an on-demand rotation and after an emergency revocation, no refetch', async () => {
    const clock = { now: Date.now() };
    const kw = await createKeyward({
      store: createMemoryStore(),
      masterKey: MasterKey.generate().exportText(),
      logger: false,
      scheduler: false,
      syncIntervalMs: 60_000,
      now: () => clock.now,
    });
    cleanup.push(() => kw.close());
    const { url, requests } = await serveJwks(kw);
    const jwks = createRemoteJWKSet(url); // jose defaults: 30 s cooldown, 10 min cache
    const verify = async (token: string) =>
      (await jwtVerify(token, jwks, { typ: 'at+jwt' })).protectedHeader.kid;

    // Warm cache: the resource server has fetched the JWKS once.
    const first = kw.jwt.sign({ sub: 'alice' });
    expect(await verify(first)).toBe(kw.jwt.verify(first).kid);
    expect(requests()).toBe(1);

    // On-demand rotation: the published standby signs, and the verifier already knows it.
    const rotated = await kw.keys.rotate({ use: 'sig', reason: 'test' });
    expect(rotated.unpublished).toBe(false);
    const afterRotation = kw.jwt.sign({ sub: 'bob' });
    expect(await verify(afterRotation)).toBe(rotated.kid);
    expect(await verify(first)).toBe(rotated.previousKid);
    expect(requests()).toBe(1);

    // jwksMaxAge later, every cache holds the JWKS with the new standby (the resource server refreshes
    // within its cache age; here explicitly, so the refetch happens before the revocation, not after).
    clock.now += kw.policy.jwksMaxAge;
    await jwks.reload();
    expect(requests()).toBe(2);

    // Emergency revocation of the active key: the standby published since the rotation takes over.
    const revoked = await kw.keys.revoke(rotated.kid, 'leaked');
    expect(revoked.unpublished).toBe(false);
    expect(revoked.replacement).toBeDefined();
    const afterRevocation = kw.jwt.sign({ sub: 'carol' });
    expect(await verify(afterRevocation)).toBe(revoked.replacement);
    expect(requests()).toBe(2);
  });

  it('without a published standby the cached verifier does reject the new key (the case keyward reports)', async () => {
    const clock = { now: Date.now() };
    const kw = await createKeyward({
      store: createMemoryStore(),
      masterKey: MasterKey.generate().exportText(),
      logger: false,
      scheduler: false,
      syncIntervalMs: 60_000,
      now: () => clock.now,
    });
    cleanup.push(() => kw.close());
    const { url } = await serveJwks(kw);
    const jwks = createRemoteJWKSet(url);
    await jwtVerify(kw.jwt.sign({ sub: 'alice' }), jwks);
    // Two rotations inside jwksMaxAge: the second promotes a standby the verifier has not fetched.
    await kw.keys.rotate({ use: 'sig' });
    const second = await kw.keys.rotate({ use: 'sig' });
    expect(second.unpublished).toBe(true);
    await expect(jwtVerify(kw.jwt.sign({ sub: 'bob' }), jwks)).rejects.toMatchObject({
      code: 'ERR_JWKS_NO_MATCHING_KEY',
    });
  });
});
