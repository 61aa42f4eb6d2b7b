/**
 * Fernet encrypt / decrypt throughput, ~100-byte payload: keyward vs the npm `fernet` package vs raw
 * node:crypto written inline (the practical limit).
 * Run: cd bench && npx tsx --conditions=@keyward/source micro/fernet.ts
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import { Fernet } from '../../packages/core/src/fernet/index.js';

interface NpmFernet {
  Secret: new (key: string) => unknown;
  Token: new (options: {
    secret: unknown;
    token?: string;
    ttl?: number;
  }) => {
    encode(message: string): string;
    decode(): string;
  };
}
const npm = createRequire(import.meta.url)('fernet') as NpmFernet;

const KEY = Fernet.generateKey();
const PAYLOAD =
  'The quick brown fox jumps over the lazy dog; a ~100 byte secret value, e.g. an OAuth refresh tok';
const WARMUP_MS = 300;
const RUN_MS = 1000;
const REPEATS = 3;

// Raw baseline: the same token, with no validation beyond what the format needs.
const keyBytes = Buffer.from(KEY, 'base64url');
const signingKey = keyBytes.subarray(0, 16);
const encryptionKey = keyBytes.subarray(16);
function rawEncrypt(text: string): string {
  const iv = randomBytes(16);
  const header = Buffer.alloc(25);
  header[0] = 0x80;
  header.writeUInt32BE(Math.floor(Date.now() / 1000), 5);
  iv.copy(header, 9);
  const cipher = createCipheriv('aes-128-cbc', encryptionKey, iv);
  const body = Buffer.concat([header, cipher.update(text, 'utf8'), cipher.final()]);
  const mac = createHmac('sha256', signingKey).update(body).digest();
  const encoded = Buffer.concat([body, mac]).toString('base64url');
  return encoded + '='.repeat((4 - (encoded.length % 4)) % 4);
}
function rawDecrypt(token: string): string {
  const raw = Buffer.from(token, 'base64url');
  const mac = createHmac('sha256', signingKey).update(raw.subarray(0, -32)).digest();
  if (raw[0] !== 0x80 || !timingSafeEqual(mac, raw.subarray(-32))) throw new Error('invalid');
  const decipher = createDecipheriv('aes-128-cbc', encryptionKey, raw.subarray(9, 25));
  return Buffer.concat([decipher.update(raw.subarray(25, -32)), decipher.final()]).toString('utf8');
}

const keyward = new Fernet(KEY);
const npmSecret = new npm.Secret(KEY);
const token = keyward.encrypt(PAYLOAD);

const subjects = {
  raw: { encrypt: () => rawEncrypt(PAYLOAD), decrypt: () => rawDecrypt(token) },
  keyward: { encrypt: () => keyward.encrypt(PAYLOAD), decrypt: () => keyward.decryptString(token) },
  'npm fernet': {
    encrypt: () => new npm.Token({ secret: npmSecret, ttl: 0 }).encode(PAYLOAD),
    decrypt: () => new npm.Token({ secret: npmSecret, token, ttl: 0 }).decode(),
  },
};

// Every subject must agree before its speed means anything.
for (const [name, s] of Object.entries(subjects)) {
  if (s.decrypt() !== PAYLOAD || keyward.decryptString(s.encrypt()) !== PAYLOAD)
    throw new Error(`${name} is wrong`);
}

let sink = 0;
function opsPerSecond(fn: () => string, ms: number): number {
  let ops = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 200; i++) sink += fn().length;
    ops += 200;
    now = process.hrtime.bigint();
  }
  return ops / (Number(now - start) / 1e9);
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

type Op = 'encrypt' | 'decrypt';
const names = Object.keys(subjects) as (keyof typeof subjects)[];
const results = Object.fromEntries(names.map((n) => [n, { encrypt: 0, decrypt: 0 }])) as Record<
  keyof typeof subjects,
  Record<Op, number>
>;
for (const op of ['encrypt', 'decrypt'] as const) {
  for (const name of names) opsPerSecond(subjects[name][op], WARMUP_MS);
  const runs = Object.fromEntries(names.map((n) => [n, [] as number[]]));
  // Interleave the subjects in each round so drift (GC, other load) hits all of them alike.
  for (let r = 0; r < REPEATS; r++) {
    for (const name of names) runs[name]!.push(opsPerSecond(subjects[name][op], RUN_MS));
  }
  for (const name of names) results[name][op] = median(runs[name]!);
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(10);
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`.padStart(8);
console.log(
  `Fernet, ${Buffer.byteLength(PAYLOAD)}-byte payload, Node ${process.version}, median of ${REPEATS} × ${RUN_MS} ms`,
);
console.log('subject     | op      |     ops/s | vs raw  | vs npm');
console.log('------------|---------|-----------|---------|--------');
for (const op of ['encrypt', 'decrypt'] as const) {
  for (const [name, r] of Object.entries(results)) {
    console.log(
      `${name.padEnd(11)} | ${op.padEnd(7)} |${fmt(r[op])} |${ratio(r[op], results.raw[op])} |${ratio(r[op], results['npm fernet'][op])}`,
    );
  }
}
if (sink < 0) console.log(sink);
