import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterContractTarget, RunningApp } from './adapter-contract.js';

/** An answer read whole, from a given client address. */
interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
  json: any;
  text: string;
}

/**
 * POSTs JSON from the loopback address `from` (any of 127.0.0.0/8 on Linux): each case of the
 * suite is a client of its own, without trusting a forwarded header.
 */
function postFrom(base: string, from: string, path: string, body: unknown): Promise<Answer> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, base),
      {
        method: 'POST',
        localAddress: from,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function expectThrottled(answer: Answer): void {
  expect(answer.status, answer.text).toBe(429);
  expect(answer.json).toEqual({ error: 'too_many_requests', message: expect.any(String) });
  expect(String(answer.headers['retry-after'])).toMatch(/^[1-9]\d*$/);
  // Not a verdict on the credential: no challenge.
  expect(answer.headers['www-authenticate']).toBeUndefined();
}

/**
 * The login and refresh limiter of the HTTP contract (docs/contract.md "Rate limits"), against an
 * app of its own started with low limits (`KEYWARD_RATE_LIMIT_LOGIN=3/5/3600`,
 * `KEYWARD_RATE_LIMIT_REFRESH=2/3600`). Each case sends from its own loopback address.
 *
 * @example
 * ```ts
 * describeRateLimitContract('express', target, envFor)
 * ```
 */
export function describeRateLimitContract(
  name: string,
  target: AdapterContractTarget,
  envFor: (extra?: Record<string, string>) => Record<string, string>,
): void {
  describe(`adapter contract: ${name}: login and refresh limiter`, () => {
    let app: RunningApp;
    let client = 0;
    // A fresh client address per case: 127.0.<n>.<m>.
    const nextAddress = () => {
      client++;
      return `127.0.${100 + Math.floor(client / 200)}.${1 + (client % 200)}`;
    };
    beforeAll(async () => {
      app = await target.start(
        envFor({ KEYWARD_RATE_LIMIT_LOGIN: '3/5/3600', KEYWARD_RATE_LIMIT_REFRESH: '2/3600' }),
      );
    });
    afterAll(async () => app?.stop());

    it('regression #11: the 4th wrong password for a username is 429 too_many_requests with Retry-After, another username still logs in', async () => {
      const from = nextAddress();
      const login = (username: string, password: string) =>
        postFrom(app.url, from, '/auth/login', { username, password });
      for (let i = 0; i < 3; i++) expect((await login('alice', 'wrong')).status).toBe(401);
      expectThrottled(await login('alice', 'wrong'));
      // The right password is refused as well while the limit holds.
      expectThrottled(await login('alice', 'alice-password'));
      // The same client, another username: allowed (the address limit is 5 failures).
      expect((await login('admin', 'admin-password')).status).toBe(200);
    });

    it('regression #11: past the address limit every username is 429 from that address, not from another', async () => {
      const from = nextAddress();
      for (const username of ['u1', 'u2', 'u3', 'u4', 'u5']) {
        expect((await postFrom(app.url, from, '/auth/login', { username, password: 'x' })).status).toBe(401);
      }
      expectThrottled(
        await postFrom(app.url, from, '/auth/login', { username: 'rs', password: 'rs-password' }),
      );
      const elsewhere = await postFrom(app.url, nextAddress(), '/auth/login', {
        username: 'rs',
        password: 'rs-password',
      });
      expect(elsewhere.status, elsewhere.text).toBe(200);
    });

    it('regression #11: refresh is limited per address after failed refreshes, with Retry-After', async () => {
      const from = nextAddress();
      const pair = await postFrom(app.url, from, '/auth/login', { username: 'rs', password: 'rs-password' });
      expect(pair.status, pair.text).toBe(200);
      for (let i = 0; i < 2; i++) {
        const bad = await postFrom(app.url, from, '/auth/refresh', { refresh_token: 'not-a-real-token' });
        expect(bad.status, bad.text).toBe(400);
      }
      expectThrottled(
        await postFrom(app.url, from, '/auth/refresh', { refresh_token: pair.json.refresh_token }),
      );
      const other = await postFrom(app.url, nextAddress(), '/auth/refresh', {
        refresh_token: pair.json.refresh_token,
      });
      expect(other.status, other.text).toBe(200);
    });

    it('regression #11: a refusal is audited as access.throttled without the username, and counted', async () => {
      const from = nextAddress();
      for (let i = 0; i < 4; i++)
        await postFrom(app.url, from, '/auth/login', { username: 'mallory-target', password: 'x' });
      const metrics = await fetch(`${app.url}/metrics`).then((r) => r.text());
      expect(metrics).toMatch(/keyward_rate_limited_total\{route="login",limit="user"\} [1-9]/);
      if (app.output === undefined) return; // a runner that keeps no output: the metric above is the evidence
      // The audit line is written asynchronously: wait (at most 5 s) until it is there.
      const throttledLines = () =>
        (app.output?.() ?? '')
          .split('\n')
          .filter((line) => line.includes('"access.throttled"') && line.includes(from));
      for (let i = 0; i < 100 && throttledLines().length === 0; i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(throttledLines()).toHaveLength(1);
      expect(throttledLines()[0]).toMatch(/"userFingerprint":"sha256:[0-9a-f]{16}"/);
      const output = app.output();
      expect(output).not.toContain('mallory-target');
    });
  });
}
