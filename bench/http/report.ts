/** The results table (markdown) and the targets of issue 15. */
import type { Measurement } from './load.js';
import type { Alg, Framework, Variant } from './spec.js';

/** `repeated`: one token; `distinct`: a pool within the verify cache; `beyond`: a pool larger than it. */
export type Mode = 'repeated' | 'distinct' | 'beyond';

export interface Row {
  alg: Alg;
  mode: Mode;
  variant: Exclude<Variant, 'none'>;
  /** One measurement per round. */
  ms: Measurement[];
}

export interface FrameworkResult {
  framework: Framework;
  /** No auth, one measurement per round. */
  none: Measurement[];
  /** A no-op async guard of the adapter's shape, one measurement per round: the framework's floor. */
  noop: Measurement[];
  rows: Row[];
}

/** The median of the rounds (req/s) and the worst p99, failures summed, and the spread. */
export interface Summary {
  rps: number;
  p99Ms: number;
  failures: number;
  /** (max − min) / median of req/s over the rounds. */
  spread: number;
}

export function summarize(ms: readonly Measurement[]): Summary {
  const rps = ms.map((m) => m.rps).sort((a, b) => a - b);
  const median =
    rps.length % 2 === 1
      ? (rps[(rps.length - 1) / 2] as number)
      : ((rps[rps.length / 2 - 1] as number) + (rps[rps.length / 2] as number)) / 2;
  return {
    rps: median,
    p99Ms: Math.max(...ms.map((m) => m.p99Ms)),
    failures: ms.reduce((n, m) => n + m.failures, 0),
    spread: median > 0 ? ((rps.at(-1) as number) - (rps[0] as number)) / median : 0,
  };
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
  const none = summarize(result.none);
  const noop = summarize(result.noop);
  const cells: string[][] = [
    ['—', 'no auth', num(none.rps), pct(none.spread), String(none.p99Ms), '1.00', '', ''],
    [
      '—',
      'no-op guard',
      num(noop.rps),
      pct(noop.spread),
      String(noop.p99Ms),
      ratio(noop.rps / none.rps),
      '',
      'the floor of any async guard',
    ],
  ];
  const ceiling = rawCeiling(none.rps, es256VerifyRate);
  for (const row of result.rows) {
    const m = summarize(row.ms);
    // The cache-off row verifies every request: its peer row is the one beyond the cache.
    const peerMode = row.variant === 'keyward-nocache' ? 'beyond' : row.mode;
    const peerRow = result.rows.find((r) => r.alg === row.alg && r.mode === peerMode && r.variant === 'peer');
    const peer = peerRow ? summarize(peerRow.ms) : undefined;
    const ofNone = m.rps / none.rps;
    const ofPeer = peer ? m.rps / peer.rps : Number.NaN;
    const targets: string[] = [];
    if (row.variant !== 'peer') {
      const verifiesEach = row.mode === 'beyond' || row.variant === 'keyward-nocache';
      if (row.mode === 'repeated') targets.push(target('≥ 0.95 no-auth', ofNone, 0.95, tally));
      else if (!verifiesEach) targets.push(target('≥ 0.9 no-auth', ofNone, 0.9, tally));
      else if (row.alg === 'HS256') targets.push(target('≥ 0.8 no-auth', ofNone, 0.8, tally));
      else targets.push(target(`≥ 0.9 raw ceiling (${num(ceiling)})`, m.rps / ceiling, 0.9, tally));
      if (peer) targets.push(target('≥ peer', ofPeer, 1, tally));
    }
    if (m.failures > 0) targets.push(`⚠ ${m.failures} failed requests`);
    const variant =
      row.variant === 'peer' ? peerName : row.variant === 'keyward' ? 'keyward' : 'keyward, cache off';
    cells.push([
      `${row.alg} ${row.variant === 'keyward-nocache' ? 'distinct' : row.mode}`,
      variant,
      num(m.rps),
      pct(m.spread),
      String(m.p99Ms),
      ratio(ofNone),
      row.variant === 'peer' ? '1.00' : ratio(ofPeer),
      targets.join(' · '),
    ]);
  }
  return [`### ${TITLES[result.framework]}`, '', ...alignedTable(HEADER, cells)].join('\n');
}

const pct = (n: number) => `${(n * 100).toFixed(1)} %`;

const HEADER = ['token', 'variant', 'req/s (median)', 'spread', 'p99 ms', '× no-auth', '× peer', 'targets'];
const RIGHT = [false, false, true, true, true, true, true, false];

/** A markdown table with padded columns, as the repo's formatter (Biome) writes it. */
function alignedTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, 3, ...rows.map((r) => (r[c] ?? '').length)));
  const pad = (cell: string, c: number) =>
    RIGHT[c] ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0);
  const line = (cells: string[]) => `| ${cells.map(pad).join(' | ')} |`;
  const rule = widths.map((w, c) => (RIGHT[c] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w)));
  return [line(header), `| ${rule.join(' | ')} |`, ...rows.map(line)];
}
