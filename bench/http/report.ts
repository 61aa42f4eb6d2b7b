/** The results table (markdown) and the targets of issue 15. */
import type { Measurement } from './load.js';
import type { Alg, Framework, Variant } from './spec.js';

/** `repeated`: one token; `distinct`: a pool within the verify cache; `beyond`: a pool larger than it. */
export type Mode = 'repeated' | 'distinct' | 'beyond';

/** A row's piece of one round and the no-auth piece measured next to it. */
export type Paired = Measurement & { none: Measurement };

export interface Row {
  alg: Alg;
  mode: Mode;
  variant: Exclude<Variant, 'none'>;
  /** One pair per round. */
  ms: Paired[];
}

export interface FrameworkResult {
  framework: Framework;
  /** A no-op async guard of the adapter's shape, one pair per round: the framework's floor. */
  noop: Paired[];
  rows: Row[];
}

/** One row over its rounds: medians, and how far its pairs' ratios to no-auth disagree. */
export interface Summary {
  /** What one core serves: 10⁶ ÷ the median CPU µs per request (the median req/s when CPU was not measured). */
  rps: number;
  p99Ms: number;
  failures: number;
  /** The median over the pairs of the no-auth piece's CPU per request ÷ the row's (req/s ÷ req/s without CPU). */
  ofNone: number;
  /** The interquartile range of those ratios ÷ their median. */
  spread: number;
  /** The median server CPU µs per request, when measured. */
  cpuUs: number | undefined;
  /** The median over the pairs of (CPU µs per request − the no-auth piece's), when measured. */
  extraUs: number | undefined;
}

export function quantile(values: readonly number[], q: number): number {
  const v = [...values].sort((a, b) => a - b);
  const at = (v.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return (v[lo] as number) + ((v[hi] as number) - (v[lo] as number)) * (at - lo);
}
const median = (values: readonly number[]) => quantile(values, 0.5);

/** A row's summary; for the no-auth baseline itself, pass its pieces as their own pairs. */
export function summarize(ms: readonly Paired[]): Summary {
  const byCpu = ms.every((m) => m.cpuUsPerRequest !== undefined && m.none.cpuUsPerRequest !== undefined);
  const cpu = byCpu ? ms.map((m) => m.cpuUsPerRequest as number) : undefined;
  const noneCpu = byCpu ? ms.map((m) => m.none.cpuUsPerRequest as number) : undefined;
  const ratios =
    cpu && noneCpu ? cpu.map((c, i) => (noneCpu[i] as number) / c) : ms.map((m) => m.rps / m.none.rps);
  const ofNone = median(ratios);
  return {
    rps: cpu ? 1e6 / median(cpu) : median(ms.map((m) => m.rps)),
    p99Ms: median(ms.map((m) => m.p99Ms)),
    failures: ms.reduce((n, m) => n + m.failures, 0),
    ofNone,
    spread: (quantile(ratios, 0.75) - quantile(ratios, 0.25)) / ofNone,
    cpuUs: cpu ? median(cpu) : undefined,
    extraUs: cpu && noneCpu ? median(cpu.map((c, i) => c - (noneCpu[i] as number))) : undefined,
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

const num = (n: number) => Math.round(n).toLocaleString('en-US');
const ratio = (n: number) => n.toFixed(2);
const pct = (n: number) => `${(n * 100).toFixed(1)} %`;
const signed = (n: number) => `${n >= 0 ? '+' : '−'}${Math.abs(n).toFixed(1)}`;
const us = (n: number | undefined) => (n === undefined ? '' : n.toFixed(1));

function target(label: string, value: number, min: number, tally: Tally): string {
  const ok = value >= min;
  if (ok) tally.met++;
  else tally.missed++;
  return `${label} ${ok ? 'met' : '**missed**'}`;
}

/** One framework's table, with the targets of issue 15 counted into `tally`. */
export function frameworkTable(result: FrameworkResult, tally: Tally): string {
  const peerName = PEER_NAMES[result.framework];
  // Every no-auth piece of the run, as pairs of their own (ratio 1, nothing extra).
  const nonePieces = [result.noop, ...result.rows.map((r) => r.ms)].flat().map((m) => m.none);
  const none = summarize(nonePieces.map((m) => ({ ...m, none: m })));
  const noop = summarize(result.noop);
  const extra = (m: Summary) => (m.extraUs === undefined ? '' : signed(m.extraUs));
  const cells: string[][] = [
    ['—', 'no auth', num(none.rps), '', String(none.p99Ms), us(none.cpuUs), '', '1.00', '', ''],
    [
      '—',
      'no-op guard',
      num(noop.rps),
      pct(noop.spread),
      String(noop.p99Ms),
      us(noop.cpuUs),
      extra(noop),
      ratio(noop.ofNone),
      '',
      'the floor of any async guard',
    ],
  ];
  // What the bare signature check on every request leaves of the no-auth rate (the `raw` rows).
  const ceilingOf = (alg: Alg) => {
    const raw = result.rows.find((r) => r.variant === 'raw' && r.alg === alg);
    return raw ? summarize(raw.ms).ofNone : undefined;
  };
  for (const row of result.rows) {
    const m = summarize(row.ms);
    // The cache-off row verifies every request: its peer row is the one beyond the cache.
    const peerMode = row.variant === 'keyward-nocache' ? 'beyond' : row.mode;
    const peerRow = result.rows.find((r) => r.alg === row.alg && r.mode === peerMode && r.variant === 'peer');
    const peer = peerRow ? summarize(peerRow.ms) : undefined;
    const ofPeer = peer ? m.ofNone / peer.ofNone : Number.NaN;
    const targets: string[] = [];
    if (row.variant !== 'peer' && row.variant !== 'raw') {
      const verifiesEach = row.mode === 'beyond' || row.variant === 'keyward-nocache';
      const ceiling = ceilingOf(row.alg);
      if (row.mode === 'repeated') targets.push(target('≥ 0.95 no-auth', m.ofNone, 0.95, tally));
      else if (!verifiesEach) targets.push(target('≥ 0.9 no-auth', m.ofNone, 0.9, tally));
      else if (row.alg === 'HS256')
        targets.push(
          target(
            `≥ 0.8 no-auth${ceiling === undefined ? '' : ` (raw ceiling ${ratio(ceiling)})`}`,
            m.ofNone,
            0.8,
            tally,
          ),
        );
      else if (ceiling !== undefined)
        targets.push(
          target(`≥ 0.9 raw ceiling (${ratio(m.ofNone / ceiling)})`, m.ofNone / ceiling, 0.9, tally),
        );
      if (peer) targets.push(target('≥ peer', ofPeer, 1, tally));
    }
    if (row.variant === 'raw') targets.push('the ceiling of verifying every request');
    if (m.failures > 0) targets.push(`⚠ ${m.failures} failed requests`);
    const variant = {
      peer: peerName,
      keyward: 'keyward',
      'keyward-nocache': 'keyward, cache off',
      raw: 'bare signature check',
      noop: 'no-op guard',
    }[row.variant];
    cells.push([
      `${row.alg} ${row.variant === 'keyward-nocache' ? 'distinct' : row.mode}`,
      variant,
      num(m.rps),
      pct(m.spread),
      String(m.p99Ms),
      us(m.cpuUs),
      extra(m),
      ratio(m.ofNone),
      row.variant === 'peer' ? '1.00' : row.variant === 'raw' ? '' : ratio(ofPeer),
      targets.join(' · '),
    ]);
  }
  return [`### ${TITLES[result.framework]}`, '', ...alignedTable(HEADER, cells)].join('\n');
}

const HEADER = [
  'token',
  'variant',
  'req/s per core',
  'spread',
  'p99 ms',
  'CPU µs/req',
  '+µs',
  '× no-auth',
  '× peer',
  'targets',
];
const RIGHT = [false, false, true, true, true, true, true, true, true, false];

/** A markdown table with padded columns, as the repo's formatter (Biome) writes it. */
function alignedTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, 3, ...rows.map((r) => (r[c] ?? '').length)));
  const pad = (cell: string, c: number) =>
    RIGHT[c] ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0);
  const line = (cells: string[]) => `| ${cells.map(pad).join(' | ')} |`;
  const rule = widths.map((w, c) => (RIGHT[c] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w)));
  return [line(header), `| ${rule.join(' | ')} |`, ...rows.map(line)];
}
