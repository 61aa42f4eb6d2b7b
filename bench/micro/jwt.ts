/**
 * JWT sign / verify micro-benchmark: keyward vs jose vs fast-jwt vs a raw node:crypto baseline.
 *
 *   cd bench && npx tsx --conditions=@keyward/source micro/jwt.ts [--quick]
 *
 * Re-executes itself under `taskset -c 1` when available, so every implementation runs on the same
 * single core. One run, sequential, no worker threads. "raw" is the practical limit of a verifier:
 * split, base64url-decode the signature, HMAC or crypto.verify, then base64url-decode and JSON.parse
 * the payload — no header parse, no claim checks, no policy.
 */
import { spawnSync } from 'node:child_process';
import {
  constants,
  createHmac,
  createSecretKey,
  sign as cryptoSign,
  verify as cryptoVerify,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  createJwtVerifier,
  type KeyLookup,
  type RevocationView,
  type SigningAlgorithm,
  type SigningKey,
  signJwt,
  type VerificationKey,
} from '@keyward/core';
import { createSigner, createVerifier } from 'fast-jwt';
import { jwtVerify, SignJWT } from 'jose';

if (process.env.KEYWARD_BENCH_PINNED === undefined) {
  const pinned = spawnSync(
    'taskset',
    ['-c', '1', process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: 'inherit',
      env: { ...process.env, KEYWARD_BENCH_PINNED: '1' },
    },
  );
  if (pinned.error === undefined) process.exit(pinned.status ?? 1);
  console.log('taskset unavailable: running unpinned');
  process.env.KEYWARD_BENCH_PINNED = '0';
}

const QUICK = process.argv.includes('--quick');
const DURATION_MS = QUICK ? 100 : 250;
const ROUNDS = QUICK ? 1 : 4;
const DISTINCT = 10_000;
const ALGS = ['HS256', 'ES256', 'EdDSA', 'RS256'] as const satisfies readonly SigningAlgorithm[];
type Alg = (typeof ALGS)[number];

interface Material {
  alg: Alg;
  kid: string;
  signKey: KeyObject;
  verifyKey: KeyObject;
  /** What fast-jwt takes: the secret bytes or PEM strings. */
  fastSign: string | Buffer;
  fastVerify: string | Buffer;
}

function material(alg: Alg): Material {
  const kid = `${alg.toLowerCase()}-bench`;
  if (alg === 'HS256') {
    const secret = randomBytes(32);
    const key = createSecretKey(secret);
    return { alg, kid, signKey: key, verifyKey: key, fastSign: secret, fastVerify: secret };
  }
  const pair =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    alg,
    kid,
    signKey: pair.privateKey,
    verifyKey: pair.publicKey,
    fastSign: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    fastVerify: pair.publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
}

/** A benchmark cell: ops/s of one run of `fn` over `inputs`, cycled for DURATION_MS. */
type Cell = () => Promise<number>;

function syncCell<T>(fn: (input: T) => unknown, inputs: readonly T[]): Cell {
  const n = inputs.length;
  let i = 0;
  return async () => {
    const start = performance.now();
    let ops = 0;
    for (;;) {
      for (let k = 0; k < 64; k++) {
        fn(inputs[i]!);
        i = i + 1 === n ? 0 : i + 1;
      }
      ops += 64;
      const elapsed = performance.now() - start;
      if (elapsed >= DURATION_MS) return (ops / elapsed) * 1000;
    }
  };
}

function asyncCell<T>(fn: (input: T) => Promise<unknown>, inputs: readonly T[]): Cell {
  const n = inputs.length;
  let i = 0;
  return async () => {
    const start = performance.now();
    let ops = 0;
    for (;;) {
      for (let k = 0; k < 16; k++) {
        await fn(inputs[i]!);
        i = i + 1 === n ? 0 : i + 1;
      }
      ops += 16;
      const elapsed = performance.now() - start;
      if (elapsed >= DURATION_MS) return (ops / elapsed) * 1000;
    }
  };
}

/**
 * Runs the cells of one comparison interleaved, ROUNDS times after a warm-up round, and keeps each
 * cell's best run: on a shared machine, interference only ever slows a run down.
 */
async function compare(
  alg: Alg,
  op: string,
  cells: { impl: string; peer?: string; cell: Cell }[],
): Promise<void> {
  const best = new Map<string, number>();
  for (let round = 0; round <= ROUNDS; round++) {
    for (const { impl, cell } of cells) {
      const opsPerSec = await cell();
      if (round > 0) best.set(impl, Math.max(best.get(impl) ?? 0, opsPerSec));
    }
  }
  for (const { impl, peer } of cells) {
    rows.push({ alg, op, impl, opsPerSec: best.get(impl)!, ...(peer === undefined ? {} : { peer }) });
  }
}

function rawVerifier(m: Material): (token: string) => unknown {
  const check =
    m.alg === 'HS256'
      ? (input: string, sig: Buffer) => {
          const mac = createHmac('sha256', m.verifyKey).update(input).digest();
          return mac.length === sig.length && timingSafeEqual(mac, sig);
        }
      : m.alg === 'ES256'
        ? (input: string, sig: Buffer) =>
            cryptoVerify('sha256', Buffer.from(input), { key: m.verifyKey, dsaEncoding: 'ieee-p1363' }, sig)
        : m.alg === 'EdDSA'
          ? (input: string, sig: Buffer) => cryptoVerify(null, Buffer.from(input), m.verifyKey, sig)
          : (input: string, sig: Buffer) => cryptoVerify('sha256', Buffer.from(input), m.verifyKey, sig);
  return (token) => {
    const d1 = token.indexOf('.');
    const d2 = token.indexOf('.', d1 + 1);
    if (!check(token.slice(0, d2), Buffer.from(token.slice(d2 + 1), 'base64url')))
      throw new Error('bad signature');
    return JSON.parse(Buffer.from(token.slice(d1 + 1, d2), 'base64url').toString());
  };
}

function rawSigner(m: Material): (payload: object) => string {
  const header = Buffer.from(JSON.stringify({ alg: m.alg, kid: m.kid, typ: 'at+jwt' })).toString('base64url');
  return (payload) => {
    const input = `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    const sig =
      m.alg === 'HS256'
        ? createHmac('sha256', m.signKey).update(input).digest()
        : m.alg === 'ES256'
          ? cryptoSign('sha256', Buffer.from(input), { key: m.signKey, dsaEncoding: 'ieee-p1363' })
          : m.alg === 'EdDSA'
            ? cryptoSign(null, Buffer.from(input), m.signKey)
            : cryptoSign('sha256', Buffer.from(input), {
                key: m.signKey,
                padding: constants.RSA_PKCS1_PADDING,
              });
    return `${input}.${sig.toString('base64url')}`;
  };
}

interface Row {
  alg: Alg;
  op: string;
  impl: string;
  opsPerSec: number;
  /** Name of the fast-jwt row this one is compared with. */
  peer?: string;
}
const rows: Row[] = [];

const nowSec = Math.floor(Date.now() / 1000);
const claims = (i: number) => ({
  sub: `user_${i % 977}`,
  scope: 'read write',
  jti: `jti-${i}-${randomBytes(6).toString('hex')}`,
  iat: nowSec,
  exp: nowSec + 3600,
  iss: 'https://auth.example',
  aud: 'api',
});

for (const alg of ALGS) {
  const m = material(alg);
  const signing: SigningKey = { kid: m.kid, alg, keyObject: m.signKey };
  const verification: VerificationKey = {
    kid: m.kid,
    alg,
    state: 'active',
    keyObject: m.verifyKey,
    verifyUntil: undefined,
  };
  const keys: KeyLookup = {
    verificationKey: (kid) => (kid === m.kid ? verification : undefined),
    signingKey: () => signing,
  };
  const revokedJti = new Set<string>(['jti-revoked']);
  const revocations: RevocationView = {
    check: (c) => (c.jti !== undefined && revokedJti.has(c.jti) ? 'token_revoked' : undefined),
  };
  const tokens = Array.from({ length: DISTINCT }, (_, i) => signJwt(signing, claims(i), { typ: 'at+jwt' }));
  const one = [tokens[0]!];
  const payloads = [claims(0)];

  const fastSigner = createSigner({ key: m.fastSign, algorithm: alg, kid: m.kid });
  await compare(alg, 'sign', [
    { impl: 'raw', cell: syncCell(rawSigner(m), payloads) },
    {
      impl: 'keyward',
      peer: 'fast-jwt',
      cell: syncCell((p) => signJwt(signing, p, { typ: 'at+jwt' }), payloads),
    },
    { impl: 'fast-jwt', cell: syncCell((p) => fastSigner(p), payloads) },
    {
      impl: 'jose',
      peer: 'fast-jwt',
      cell: asyncCell(
        (p) => new SignJWT(p).setProtectedHeader({ alg, kid: m.kid, typ: 'at+jwt' }).sign(m.signKey),
        payloads,
      ),
    },
  ]);

  for (const [mode, inputs] of [
    ['same token', one],
    [`${DISTINCT} tokens`, tokens],
  ] as const) {
    const keywardNoCache = createJwtVerifier({
      keys,
      revocations,
      cache: false,
      issuer: 'https://auth.example',
    });
    // In the distinct mode a 1,000-entry cache cycled by 10,000 tokens always misses: this measures
    // the miss path plus insertion and eviction, as fast-jwt's default 1,000-entry cache does.
    const keywardCache = createJwtVerifier({
      keys,
      revocations,
      cache: { max: inputs.length === 1 ? 10_000 : 1_000 },
      issuer: 'https://auth.example',
    });
    const fastNoCache = createVerifier({ key: m.fastVerify, algorithms: [alg] });
    const fastCache = createVerifier({ key: m.fastVerify, algorithms: [alg], cache: true });
    await compare(alg, `verify, ${mode}`, [
      { impl: 'raw', cell: syncCell(rawVerifier(m), inputs) },
      {
        impl: 'keyward (no cache)',
        peer: 'fast-jwt (no cache)',
        cell: syncCell((t) => keywardNoCache.verify(t), inputs),
      },
      {
        impl: 'keyward (cache)',
        peer: 'fast-jwt (cache)',
        cell: syncCell((t) => keywardCache.verify(t), inputs),
      },
      { impl: 'fast-jwt (no cache)', cell: syncCell((t) => fastNoCache(t), inputs) },
      { impl: 'fast-jwt (cache)', cell: syncCell((t) => fastCache(t), inputs) },
      {
        impl: 'jose',
        peer: 'fast-jwt (no cache)',
        cell: asyncCell((t) => jwtVerify(t, m.verifyKey, { algorithms: [alg] }), inputs),
      },
    ]);
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const ratio = (a: number, b: number | undefined) => (b === undefined ? '' : `${(a / b).toFixed(2)}x`);
console.log(
  `\nJWT micro-benchmark — node ${process.version}, ${process.env.KEYWARD_BENCH_PINNED === '1' ? 'pinned to CPU 1' : 'unpinned'}, ${DURATION_MS} ms per cell\n`,
);
console.log(`| alg | operation | implementation | ops/s | vs raw | vs fast-jwt |\n|---|---|---|--:|--:|--:|`);
for (const row of rows) {
  const group = rows.filter((r) => r.alg === row.alg && r.op === row.op);
  const raw = group.find((r) => r.impl === 'raw')?.opsPerSec;
  const peer = group.find((r) => r.impl === (row.peer ?? row.impl))?.opsPerSec;
  console.log(
    `| ${row.alg} | ${row.op} | ${row.impl} | ${fmt(row.opsPerSec)} | ${ratio(row.opsPerSec, raw)} | ${row.impl.startsWith('fast-jwt') ? '' : ratio(row.opsPerSec, peer)} |`,
  );
}
