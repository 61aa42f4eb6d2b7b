/** The results table (markdown) and the targets of issue 6. */
import type { Measurement } from './load.js';
import type { Alg, Framework, Variant } from './spec.js';

export type Mode = 'repeated' | 'distinct';

export interface Row {
  alg: Alg;
  mode: Mode;
  variant: Exclude<Variant, 'none'>;
  m: Measurement;
}

export interface FrameworkResult {
  framework: Framework;
  /** No auth, measured before and after the other variants. */
  none: [Measurement, Measurement];
  rows: Row[];
}

export const PEER_NAMES: Record<Framework, string> = {
  express: 'express-jwt',
  fastify: '@fastify/jwt',
  hono: 'hono/jwt',
  'nest-express': '@nestjs/jwt + guard',
  'nest-fastify': '@nestjs/jwt + guard',
};

const TITLES: Record<Framework, string> = {
  express: 'Express 5',
  fastify: 'Fastify 5',
  hono: 'Hono 4 (@hono/node-server)',
  'nest-express': 'NestJS 12 on Express',
  'nest-fastify': 'NestJS 12 on Fastify',
};

export interface Tally {
  met: number;
  missed: number;
}

/** The HTTP ceiling of a verifier doing only `crypto.verify` at `verifyRate`/s on top of the no-auth server. */
export function rawCeiling(noAuthRps: number, verifyRate: number): number {
  return 1 / (1 / noAuthRps + 1 / verifyRate);
}

const num = (n: number) => Math.round(n).toLocaleString('en-US');
const ratio = (n: number) => n.toFixed(2);

function target(label: string, value: number, min: number, tally: Tally): string {
  const ok = value >= min;
  if (ok) tally.met++;
  else tally.missed++;
  return `${label} ${ok ? 'met' : '**missed**'}`;
}

/** One framework's table; `es256VerifyRate` is bare ES256 `crypto.verify`/s (see keys.ts). */
export function frameworkTable(result: FrameworkResult, es256VerifyRate: number, tally: Tally): string {
  const peerName = PEER_NAMES[result.framework];
  const [first, last] = result.none;
  const none = { rps: (first.rps + last.rps) / 2, p99Ms: Math.max(first.p99Ms, last.p99Ms) };
  const cells: string[][] = [
    [
      '—',
      'no auth',
      num(none.rps),
      String(none.p99Ms),
      '1.00',
      '',
      `before ${num(first.rps)}, after ${num(last.rps)}`,
    ],
  ];
  const ceiling = rawCeiling(none.rps, es256VerifyRate);
  for (const row of result.rows) {
    const peer = result.rows.find((r) => r.alg === row.alg && r.mode === row.mode && r.variant === 'peer');
    const ofNone = row.m.rps / none.rps;
    const ofPeer = peer ? row.m.rps / peer.m.rps : Number.NaN;
    const targets: string[] = [];
    if (row.variant !== 'peer') {
      if (row.mode === 'repeated') targets.push(target('≥ 0.9 no-auth', ofNone, 0.9, tally));
      else if (row.alg === 'HS256') targets.push(target('≥ 0.7 no-auth', ofNone, 0.7, tally));
      else targets.push(target(`≥ 0.9 raw ceiling (${num(ceiling)})`, row.m.rps / ceiling, 0.9, tally));
      if (peer) targets.push(target('≥ peer', ofPeer, 1, tally));
    }
    if (row.m.failures > 0) targets.push(`⚠ ${row.m.failures} failed requests`);
    const variant =
      row.variant === 'peer' ? peerName : row.variant === 'keyward' ? 'keyward' : 'keyward, cache off';
    cells.push([
      `${row.alg} ${row.mode}`,
      variant,
      num(row.m.rps),
      String(row.m.p99Ms),
      ratio(ofNone),
      row.variant === 'peer' ? '1.00' : ratio(ofPeer),
      targets.join(' · '),
    ]);
  }
  return [`### ${TITLES[result.framework]}`, '', ...alignedTable(HEADER, cells)].join('\n');
}

const HEADER = ['token', 'variant', 'req/s', 'p99 ms', '× no-auth', '× peer', 'targets'];
const RIGHT = [false, false, true, true, true, true, false];

/** A markdown table with padded columns, as the repo's formatter (Biome) writes it. */
function alignedTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, 3, ...rows.map((r) => (r[c] ?? '').length)));
  const pad = (cell: string, c: number) =>
    RIGHT[c] ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0);
  const line = (cells: string[]) => `| ${cells.map(pad).join(' | ')} |`;
  const rule = widths.map((w, c) => (RIGHT[c] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w)));
  return [line(header), `| ${rule.join(' | ')} |`, ...rows.map(line)];
}
