import { KeywardError } from '../errors.js';
import { SIGNING_ALGORITHMS } from './algorithms.js';
import type { KeyAlgorithm, KeyUse, SigningAlgorithm } from './types.js';

/** A duration: milliseconds as a number, or a string such as `'90d'`, `'15m'`, `'1h'`, `'30s'`, `'500ms'`. */
export type Duration = number | string;

/**
 * When keys rotate and how long a replaced key keeps verifying. Every duration is in milliseconds.
 * Build one with {@link resolveRotationPolicy}; it fills defaults and refuses unsafe timelines.
 */
export interface RotationPolicy {
  /** Signing keys rotate this long after activation. Default 90 days. */
  readonly sigRotateEvery: number;
  /** JWE (`dir` + `A256GCM`) keys rotate this long after activation. Default: `sigRotateEvery`. */
  readonly encRotateEvery: number;
  /** Fernet data keys rotate this long after activation. Default 30 days. */
  readonly dataRotateEvery: number;
  /**
   * A new key is generated (pending, already in the JWKS) this long before it starts signing or
   * encrypting, so verifiers that cache the JWKS, and every instance, know it first. Applies to every
   * use. Default 1 day; must be at least `jwksMaxAge`.
   */
  readonly publishLead: number;
  /** Longest lifetime of a token signed or encrypted by a key. Default 15 minutes. */
  readonly maxTokenTtl: number;
  /** Clock difference tolerated between issuer and verifiers. Default 60 seconds. */
  readonly clockSkew: number;
  /** `Cache-Control: max-age` of the JWKS response. Default 10 minutes. */
  readonly jwksMaxAge: number;
  /** Extra margin added to the default `retainFor`. Default 5 minutes. */
  readonly grace: number;
  /**
   * How long a replaced sig / enc key keeps verifying after rotation (`verifyUntil = rotation + retainFor`).
   * Default `maxTokenTtl + clockSkew + jwksMaxAge + grace` (31 minutes with the other defaults).
   */
  readonly retainFor: number;
  /** Algorithm of newly generated signing keys. Default `ES256`. */
  readonly signingAlg: SigningAlgorithm;
  /** Uses the planner keeps an active key for. Default `['sig', 'enc', 'data']`. */
  readonly uses: readonly KeyUse[];
  /**
   * Most retiring keys one use may hold: an on-demand rotation of a use that already holds this many
   * (still verifying) retiring keys is refused with `rotation_limit`, so the JWKS stays bounded.
   * Revocation is never refused. Default 5; a whole number ≥ 1.
   */
  readonly maxRetiringKeys: number;
  /**
   * How long a `retired` record stays in the keyring document; the scheduler (and every on-demand
   * rotation) prunes older ones. Their audit events stay. Default 30 days.
   */
  readonly retiredRetention: number;
}

/** Names of the duration options of a {@link RotationPolicy}. */
export type RotationDurationOption = Exclude<keyof RotationPolicy, 'signingAlg' | 'uses' | 'maxRetiringKeys'>;

/** Input of {@link resolveRotationPolicy}: any option may be left out; durations may be strings. */
export type RotationPolicyInput = Partial<Record<RotationDurationOption, Duration>> & {
  readonly signingAlg?: SigningAlgorithm;
  readonly uses?: readonly KeyUse[];
  /** See {@link RotationPolicy.maxRetiringKeys}. Default 5. */
  readonly maxRetiringKeys?: number;
};

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const UNITS: Record<string, number> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: DAY, w: 7 * DAY };
const SIGNING_ALGS: readonly string[] = SIGNING_ALGORITHMS;
const USES: readonly string[] = ['sig', 'enc', 'data'];
/** Options that may be zero; every other duration must be positive. */
const MAY_BE_ZERO: ReadonlySet<RotationDurationOption> = new Set(['clockSkew', 'grace']);

/**
 * Parses a duration option into milliseconds.
 *
 * @throws {KeywardError} `config_invalid` naming `option` for garbage, negative or non-finite values.
 * @example
 * ```ts
 * parseDuration('15m', 'maxTokenTtl') // 900000
 * parseDuration(30_000, 'clockSkew')  // 30000
 * ```
 */
export function parseDuration(value: Duration, option: string): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
    throw invalid(option, `${option} must be a finite, non-negative number of milliseconds, got ${value}`);
  }
  const match = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/.exec(value) : null;
  const unit = match?.[2] === undefined ? undefined : UNITS[match[2]];
  if (match === null || unit === undefined) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : typeof value;
    throw invalid(
      option,
      `${option} must be milliseconds or a duration like '90d', '15m', '30s'; got ${shown}`,
    );
  }
  return Math.round(Number(match[1]) * unit);
}

/**
 * Formats milliseconds the way messages show them: `'1d6h'`, `'26m'`, `'90s'` → `'1m30s'`.
 *
 * @example
 * ```ts
 * formatDuration(26 * 60_000) // '26m'
 * ```
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  let out = '';
  for (const [unit, size] of [
    ['d', DAY],
    ['h', HOUR],
    ['m', MINUTE],
    ['s', SECOND],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  if (rest > 0) out += `${Math.round(rest * 1000) / 1000}ms`;
  return sign + out;
}

/**
 * Fills defaults, parses durations and validates the result with {@link validateRotationPolicy}.
 *
 * @throws {KeywardError} `config_invalid` naming the option and the numbers involved.
 * @example
 * ```ts
 * const policy = resolveRotationPolicy({ sigRotateEvery: '30d', maxTokenTtl: '5m' })
 * policy.retainFor // 5m + 60s + 10m + 5m = 1_260_000
 * ```
 */
export function resolveRotationPolicy(input: RotationPolicyInput = {}): RotationPolicy {
  const read = (option: RotationDurationOption, fallback: number): number => {
    const value = input[option];
    return value === undefined ? fallback : parseDuration(value, option);
  };
  const sigRotateEvery = read('sigRotateEvery', 90 * DAY);
  const maxTokenTtl = read('maxTokenTtl', 15 * MINUTE);
  const clockSkew = read('clockSkew', MINUTE);
  const jwksMaxAge = read('jwksMaxAge', 10 * MINUTE);
  const grace = read('grace', 5 * MINUTE);
  const signingAlg = input.signingAlg ?? 'ES256';
  const policy: RotationPolicy = {
    sigRotateEvery,
    encRotateEvery: read('encRotateEvery', sigRotateEvery),
    dataRotateEvery: read('dataRotateEvery', 30 * DAY),
    publishLead: read('publishLead', DAY),
    maxTokenTtl,
    clockSkew,
    jwksMaxAge,
    grace,
    retainFor: read('retainFor', maxTokenTtl + clockSkew + jwksMaxAge + grace),
    signingAlg,
    uses: Object.freeze([...(input.uses ?? ['sig', 'enc', 'data'])]),
    maxRetiringKeys: input.maxRetiringKeys ?? 5,
    retiredRetention: read('retiredRetention', 30 * DAY),
  };
  validateRotationPolicy(policy);
  return Object.freeze(policy);
}

/**
 * Refuses a policy whose timeline is unsafe: tokens that would outlive their key, a key used before
 * verifiers could have fetched it, a rotation period shorter than the lead, non-finite values.
 *
 * @throws {KeywardError} `config_invalid`; the message lists every problem with its numbers.
 * @example
 * ```ts
 * validateRotationPolicy({ ...resolveRotationPolicy(), publishLead: 5 * 60_000 })
 * // KeywardError: publishLead (5m) must be at least jwksMaxAge (10m)
 * ```
 */
export function validateRotationPolicy(policy: RotationPolicy): void {
  const problems: { option: string; message: string }[] = [];
  const add = (option: string, message: string) => problems.push({ option, message });
  const durations: RotationDurationOption[] = [
    'sigRotateEvery',
    'encRotateEvery',
    'dataRotateEvery',
    'publishLead',
    'maxTokenTtl',
    'clockSkew',
    'jwksMaxAge',
    'grace',
    'retainFor',
    'retiredRetention',
  ];
  for (const option of durations) {
    const value = policy[option];
    if (typeof value !== 'number' || !Number.isFinite(value))
      add(option, `${option} must be finite, got ${value}`);
    else if (MAY_BE_ZERO.has(option) ? value < 0 : value <= 0)
      add(option, `${option} must be ${MAY_BE_ZERO.has(option) ? 'non-negative' : 'positive'}, got ${value}`);
  }
  if (problems.length === 0) {
    const f = formatDuration;
    const { publishLead, jwksMaxAge, maxTokenTtl, clockSkew, retainFor } = policy;
    if (publishLead < jwksMaxAge)
      add('publishLead', `publishLead (${f(publishLead)}) must be at least jwksMaxAge (${f(jwksMaxAge)})`);
    const floor = maxTokenTtl + clockSkew + jwksMaxAge;
    if (retainFor < floor)
      add(
        'retainFor',
        `retainFor (${f(retainFor)}) must be ≥ maxTokenTtl + clockSkew + jwksMaxAge (${f(floor)})`,
      );
    for (const option of ['sigRotateEvery', 'encRotateEvery', 'dataRotateEvery'] as const) {
      if (policy[option] <= publishLead)
        add(option, `${option} (${f(policy[option])}) must be longer than publishLead (${f(publishLead)})`);
    }
  }
  if (!SIGNING_ALGS.includes(policy.signingAlg))
    add(
      'signingAlg',
      `signingAlg must be one of ${SIGNING_ALGS.join(', ')}, got ${String(policy.signingAlg)}`,
    );
  if (!Number.isInteger(policy.maxRetiringKeys) || policy.maxRetiringKeys < 1)
    add(
      'maxRetiringKeys',
      `maxRetiringKeys must be a whole number of at least 1, got ${String(policy.maxRetiringKeys)}`,
    );
  if (!Array.isArray(policy.uses) || policy.uses.some((use) => !USES.includes(use)))
    add('uses', `uses must list only ${USES.join(', ')}`);
  else if (new Set(policy.uses).size !== policy.uses.length) add('uses', 'uses must not repeat a use');
  const first = problems[0];
  if (first !== undefined) throw invalid(first.option, problems.map((p) => p.message).join('; '));
}

/**
 * The rotation period of `use` under `policy`, in ms.
 *
 * @example
 * ```ts
 * rotationPeriod(resolveRotationPolicy(), 'data') // 30 days in ms
 * ```
 */
export function rotationPeriod(policy: RotationPolicy, use: KeyUse): number {
  return use === 'sig'
    ? policy.sigRotateEvery
    : use === 'enc'
      ? policy.encRotateEvery
      : policy.dataRotateEvery;
}

/**
 * Last instant a sig / enc key replaced at `rotationTime` may still verify:
 * `rotationTime + retainFor` (by default `maxTokenTtl + clockSkew + jwksMaxAge + grace`).
 *
 * @example
 * ```ts
 * computeVerifyUntil(Date.parse('2025-01-01T00:00:00Z'), resolveRotationPolicy()) // … 00:31:00Z
 * ```
 */
export function computeVerifyUntil(rotationTime: number, policy: RotationPolicy): number {
  return rotationTime + policy.retainFor;
}

/**
 * Algorithm of a new key of `use`: `policy.signingAlg` for sig, `A256GCM` for enc, `fernet` for data.
 *
 * @example
 * ```ts
 * algorithmFor('enc', policy) // 'A256GCM'
 * ```
 */
export function algorithmFor(use: KeyUse, policy: RotationPolicy): KeyAlgorithm {
  return use === 'sig' ? policy.signingAlg : use === 'enc' ? 'A256GCM' : 'fernet';
}

function invalid(option: string, message: string): KeywardError {
  return new KeywardError('config_invalid', message, { details: { option } });
}
