// Turns the keyring and the planner's steps into spans per key: when each key is pending (published,
// not yet signing), active, and retiring (verifies only), from now to the horizon.
import type { KeyRow, KeyUse, Plan } from './types.js';

export type SpanState = 'pending' | 'active' | 'retiring';

export interface Span {
  state: SpanState;
  from: number;
  to: number;
}

export interface TimelineRow {
  kid: string;
  use: KeyUse;
  /** A key the planner will create (`sim-…` in the plan). */
  planned: boolean;
  spans: Span[];
}

export interface Marker {
  at: number;
  label: string;
}

export interface TimelineModel {
  start: number;
  now: number;
  end: number;
  rows: TimelineRow[];
  /** The planner's next rotations (activations) within the horizon. */
  rotations: Marker[];
}

const DAY = 86_400_000;
const time = (iso: string | undefined) => (iso === undefined ? undefined : Date.parse(iso));

/** Builds the timeline of `keys` (live ones) and what `plan` will do to them until its horizon. */
export function timelineModel(keys: readonly KeyRow[], plan: Plan): TimelineModel {
  const now = Date.parse(plan.from);
  const end = now + plan.horizonDays * DAY;
  const live = keys.filter((k) => k.state === 'pending' || k.state === 'active' || k.state === 'retiring');
  const earliest = Math.min(
    now - 7 * DAY,
    ...live.map((k) => time(k.activatedAt) ?? time(k.createdAt) ?? now),
  );
  // Show some of the past, never more than a third of the picture.
  const start = Math.max(earliest, now - Math.max(plan.horizonDays, 21) * DAY * 0.5);
  /** Per kid: when the plan activates it, when it demotes it (and until when it then verifies), when it retires. */
  const activated = new Map<string, number>();
  const demoted = new Map<string, { at: number; until: number | undefined }>();
  const retired = new Map<string, number>();
  const created = new Map<string, { use: KeyUse; at: number }>();
  const rotations: Marker[] = [];
  const counters = new Map<KeyUse, number>();
  const simNames = new Map<string, string>();
  for (const step of plan.steps) {
    const at = Date.parse(step.at);
    for (const action of step.actions) {
      switch (action.type) {
        case 'generate':
        case 'bootstrap': {
          // New kids are `sim-<use>-<n>` in the order the planner makes them.
          const n = (counters.get(action.use) ?? 0) + 1;
          counters.set(action.use, n);
          const kid = `sim-${action.use}-${n}`;
          created.set(kid, { use: action.use, at });
          simNames.set(kid, `planned ${action.use} key ${n}`);
          if (action.type === 'bootstrap') activated.set(kid, at);
          break;
        }
        case 'activate':
          activated.set(action.kid, at);
          if (action.demote !== null)
            demoted.set(action.demote, { at, until: time(action.verifyUntil ?? undefined) });
          if (at > now)
            rotations.push({ at, label: `${action.use}: ${simNames.get(action.kid) ?? action.kid} signs` });
          break;
        case 'retire':
          retired.set(action.kid, at);
          break;
        case 'prune':
          break;
      }
    }
  }
  const successorActivation = (kid: string): number | undefined => {
    const self = live.find((k) => k.kid === kid);
    const from = time(self?.activatedAt);
    if (self === undefined || from === undefined) return undefined;
    const later = live
      .filter((k) => k.use === self.use && k.kid !== kid)
      .map((k) => time(k.activatedAt))
      .filter((t): t is number => t !== undefined && t > from && t <= now);
    return later.length > 0 ? Math.min(...later) : undefined;
  };
  const spansOf = (
    kid: string,
    state: KeyRow['state'],
    base: { createdAt?: number; activatedAt?: number; verifyUntil?: number },
  ) => {
    const spans: Span[] = [];
    const push = (s: SpanState, from: number | undefined, to: number | undefined) => {
      const a = Math.max(from ?? start, start);
      const b = Math.min(to ?? end, end);
      if (b > a) spans.push({ state: s, from: a, to: b });
    };
    const activeFrom = activated.get(kid) ?? (state === 'pending' ? undefined : base.activatedAt);
    const demote = demoted.get(kid);
    const retireAt = retired.get(kid);
    if (state === 'pending' || created.has(kid)) push('pending', base.createdAt, activeFrom ?? end);
    if (state === 'retiring') {
      // No record says when it was demoted: the next key of its use that became active did it.
      const since = successorActivation(kid) ?? now;
      push('active', base.activatedAt, since);
      push('retiring', since, retireAt ?? base.verifyUntil);
      return spans;
    }
    if (activeFrom !== undefined) {
      push('active', activeFrom, demote?.at ?? end);
      if (demote) push('retiring', demote.at, retireAt ?? demote.until);
    }
    return spans;
  };
  const rows: TimelineRow[] = [];
  const order: Record<KeyUse, number> = { sig: 0, enc: 1, data: 2 };
  for (const k of live) {
    rows.push({
      kid: k.kid,
      use: k.use,
      planned: false,
      spans: spansOf(k.kid, k.state, {
        ...(time(k.createdAt) !== undefined ? { createdAt: time(k.createdAt) as number } : {}),
        ...(time(k.activatedAt) !== undefined ? { activatedAt: time(k.activatedAt) as number } : {}),
        ...(time(k.verifyUntil) !== undefined ? { verifyUntil: time(k.verifyUntil) as number } : {}),
      }),
    });
  }
  for (const [kid, { use, at }] of created) {
    rows.push({
      kid: simNames.get(kid) ?? kid,
      use,
      planned: true,
      spans: spansOf(kid, 'pending', { createdAt: at }),
    });
  }
  rows.sort((a, b) => order[a.use] - order[b.use] || Number(a.planned) - Number(b.planned));
  return { start, now, end, rows, rotations };
}
