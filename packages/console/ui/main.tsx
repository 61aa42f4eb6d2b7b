import { render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import {
  ApiError,
  afterRevocation,
  get,
  post,
  signInWithApiKey,
  signInWithPassword,
  signOut,
  whenSignedOut,
} from './api.js';
import { type TimelineModel, timelineModel } from './timeline.js';
import {
  AUDIT_TYPES,
  type AuditEvent,
  type ChainState,
  type Health,
  type Instances,
  type KeyRow,
  type KeyUse,
  type Plan,
  USES,
} from './types.js';

const messageOf = (err: unknown) =>
  err instanceof ApiError ? `${err.message} (${err.code})` : err instanceof Error ? err.message : String(err);

const when = (iso: string | undefined | null) => (iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : '—');

// ---------------------------------------------------------------------------------------------
// Sign-in

type Session = { sub: string; scopes: string[]; via: string };

function SignIn(props: { onSession(session: Session): void; notice: string | undefined }) {
  const [mode, setMode] = useState<'password' | 'apiKey'>('password');
  const [error, setError] = useState<string | undefined>();
  const [refused, setRefused] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const username = useRef<HTMLInputElement>(null);
  const password = useRef<HTMLInputElement>(null);
  const apiKey = useRef<HTMLInputElement>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setRefused(undefined);
    setBusy(true);
    try {
      if (mode === 'password')
        await signInWithPassword(username.current?.value ?? '', password.current?.value ?? '');
      else signInWithApiKey(apiKey.current?.value ?? '');
      const me = await get<{ sub: string; scopes: string[]; auth: string }>('/me');
      if (!me.scopes.includes('admin')) {
        await signOut();
        setRefused(`This account is not an administrator: ${me.sub} has no "admin" scope.`);
        return;
      }
      props.onSession({ sub: me.sub, scopes: me.scopes, via: me.auth });
    } catch (err) {
      await signOut();
      setError(
        err instanceof ApiError && err.status === 401
          ? 'Wrong username, password or API key.'
          : messageOf(err),
      );
    } finally {
      if (password.current) password.current.value = '';
      if (apiKey.current) apiKey.current.value = '';
      setBusy(false);
    }
  };

  return (
    <main class="signin">
      <h1>keyward console</h1>
      <div class="tabs" role="tablist" aria-label="Sign-in method">
        <button
          type="button"
          role="tab"
          aria-selected={mode === 'password'}
          onClick={() => setMode('password')}
        >
          Password
        </button>
        <button type="button" role="tab" aria-selected={mode === 'apiKey'} onClick={() => setMode('apiKey')}>
          API key
        </button>
      </div>
      <form onSubmit={submit} class="card">
        {mode === 'password' ? (
          <>
            <label>
              Username
              <input ref={username} name="username" autocomplete="username" required />
            </label>
            <label>
              Password
              <input
                ref={password}
                name="password"
                type="password"
                autocomplete="current-password"
                required
              />
            </label>
          </>
        ) : (
          <label>
            API key
            <input ref={apiKey} name="apiKey" type="password" autocomplete="off" required />
          </label>
        )}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      {props.notice && <p class="notice">{props.notice}</p>}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {refused && (
        <p class="error refused" role="alert">
          {refused}
        </p>
      )}
      <p class="hint">
        Only accounts with the scope "admin" may use the console. Nothing is stored in the browser.
      </p>
    </main>
  );
}

// ---------------------------------------------------------------------------------------------
// Dialogs

interface Pending {
  title: string;
  text: string;
  needsReason: boolean;
  run(reason: string): Promise<string>;
}

function ConfirmDialog(props: { pending: Pending; onDone(message: string | undefined): void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const reason = useRef<HTMLTextAreaElement>(null);
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const confirm = async (event: Event) => {
    event.preventDefault();
    const text = reason.current?.value.trim() ?? '';
    if (props.pending.needsReason && text === '') {
      setError('A revocation needs a reason.');
      return;
    }
    setBusy(true);
    try {
      const message = await props.pending.run(text);
      ref.current?.close();
      props.onDone(message);
    } catch (err) {
      setError(messageOf(err));
      setBusy(false);
    }
  };
  const cancel = () => {
    ref.current?.close();
    props.onDone(undefined);
  };
  return (
    <dialog ref={ref} aria-labelledby="dialog-title" onCancel={cancel}>
      <form onSubmit={confirm}>
        <h2 id="dialog-title">{props.pending.title}</h2>
        <p>{props.pending.text}</p>
        {props.pending.needsReason && (
          <label>
            Reason
            <textarea ref={reason} name="reason" rows={3} maxLength={512} />
          </label>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <div class="actions">
          <button type="button" onClick={cancel}>
            Cancel
          </button>
          <button type="submit" class="danger" disabled={busy}>
            Confirm
          </button>
        </div>
      </form>
    </dialog>
  );
}

// ---------------------------------------------------------------------------------------------
// Keys

const HORIZONS = [30, 60, 120, 365];

function Timeline(props: { model: TimelineModel }) {
  const { start, now, end, rows, rotations } = props.model;
  const width = 1000;
  const left = 190;
  const rowHeight = 22;
  const top = 28;
  const height = top + rows.length * rowHeight + 24;
  const x = (t: number) => left + ((t - start) / (end - start)) * (width - left - 10);
  const ticks: number[] = [];
  const first = new Date(start);
  for (
    let d = Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 1);
    d < end;
    d = Date.UTC(new Date(d).getUTCFullYear(), new Date(d).getUTCMonth() + 1, 1)
  )
    ticks.push(d);
  return (
    <svg
      class="timeline"
      role="img"
      aria-label="Rotation timeline"
      viewBox={`0 0 ${width} ${height}`}
      preserveAspectRatio="xMinYMin meet"
    >
      <title>Rotation timeline</title>
      {ticks.map((t) => (
        <g key={t} class="tick">
          <line x1={x(t)} x2={x(t)} y1={top - 6} y2={height - 20} />
          <text x={x(t) + 3} y={height - 6}>
            {new Date(t).toISOString().slice(0, 7)}
          </text>
        </g>
      ))}
      {rows.map((row, i) => (
        <g key={row.kid} class={`row use-${row.use}${row.planned ? ' planned' : ''}`} data-kid={row.kid}>
          <text class="kid" x={4} y={top + i * rowHeight + 15}>
            {row.kid.length > 24 ? `${row.kid.slice(0, 22)}…` : row.kid}
            <title>{row.kid}</title>
          </text>
          {row.spans.map((span) => (
            <rect
              key={`${span.state}-${span.from}`}
              class={`span ${span.state}`}
              x={x(span.from)}
              y={top + i * rowHeight + 4}
              width={Math.max(2, x(span.to) - x(span.from))}
              height={rowHeight - 8}
              rx={3}
            >
              <title>{`${row.kid} ${span.state} ${when(new Date(span.from).toISOString())} → ${when(new Date(span.to).toISOString())}`}</title>
            </rect>
          ))}
        </g>
      ))}
      {rotations.map((r) => (
        <g key={`${r.at}-${r.label}`} class="rotation">
          <path d={`M ${x(r.at)} ${top - 14} l 5 7 l -5 7 l -5 -7 z`} />
          <title>{`${when(new Date(r.at).toISOString())} ${r.label}`}</title>
        </g>
      ))}
      <g class="now">
        <line x1={x(now)} x2={x(now)} y1={top - 16} y2={height - 20} />
        <text x={x(now) + 4} y={top - 18}>
          now
        </text>
      </g>
      <g class="legend">
        <rect class="span pending" x={4} y={4} width={12} height={10} />
        <text x={20} y={13}>
          pending
        </text>
        <rect class="span active" x={80} y={4} width={12} height={10} />
        <text x={96} y={13}>
          active
        </text>
        <rect class="span retiring" x={150} y={4} width={12} height={10} />
        <text x={166} y={13}>
          retiring
        </text>
      </g>
    </svg>
  );
}

function KeysView(props: { ask(p: Pending): void; version: number; health: Health | undefined }) {
  const [keys, setKeys] = useState<KeyRow[] | undefined>();
  const [plan, setPlan] = useState<Plan | undefined>();
  const [horizon, setHorizon] = useState(120);
  const [error, setError] = useState<string | undefined>();
  const load = useCallback(async () => {
    try {
      const [k, p] = await Promise.all([
        get<KeyRow[]>('/admin/keys'),
        get<Plan>(`/admin/keys/plan?horizon=${horizon}d`),
      ]);
      setKeys(k);
      setPlan(p);
      setError(undefined);
    } catch (err) {
      setError(messageOf(err));
    }
  }, [horizon]);
  useEffect(() => {
    void load();
  }, [load, props.version]);
  const rewrap = new Map(
    (props.health?.checks?.['data:rewrap'] ?? []).map((c) => [c.componentId ?? '', c.output ?? '']),
  );
  const rotate = (use: KeyUse) =>
    props.ask({
      title: `Rotate the ${use} key?`,
      text:
        use === 'sig'
          ? 'The standby signing key starts signing now; the current one verifies until its verify-until.'
          : `A new ${use} key becomes active now; the current one stays usable for reading.`,
      needsReason: false,
      async run() {
        const answer = await post<{ kid: string; unpublished: boolean }>('/admin/keys/rotate', { use });
        return `Rotated ${use}: ${answer.kid} is active${answer.unpublished ? ' (it was not published ahead)' : ''}.`;
      },
    });
  const revoke = (key: KeyRow) =>
    props.ask({
      title: `Revoke ${key.kid}?`,
      text:
        key.use === 'data'
          ? 'Its records stay readable while a background rewrap moves them to the replacement; then its material is destroyed.'
          : 'It stops verifying at once on every instance; tokens it signed are rejected.',
      needsReason: true,
      async run(reason) {
        const answer = await post<{ revoked: string; replacement: string | null; toRewrap?: number }>(
          `/admin/keys/${encodeURIComponent(key.kid)}/revoke`,
          { reason },
        );
        await afterRevocation(answer.revoked);
        return `Revoked ${answer.revoked}${answer.replacement ? `; ${answer.replacement} replaces it` : ''}${answer.toRewrap !== undefined ? `; ${answer.toRewrap} records to rewrap` : ''}.`;
      },
    });
  return (
    <section aria-labelledby="keys-heading">
      <h2 id="keys-heading">Keys</h2>
      <div class="toolbar">
        {USES.map((use) => (
          <button key={use} type="button" onClick={() => rotate(use)}>
            Rotate {use}
          </button>
        ))}
        <label class="inline">
          Horizon
          <select
            value={String(horizon)}
            onChange={(e) => setHorizon(Number((e.currentTarget as HTMLSelectElement).value))}
          >
            {HORIZONS.map((d) => (
              <option key={d} value={String(d)}>
                {d} days
              </option>
            ))}
          </select>
        </label>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {keys && plan && <Timeline model={timelineModel(keys, plan)} />}
      {plan && <NextRotations plan={plan} />}
      {keys &&
        USES.map((use) => (
          <table key={use} class="keys">
            <caption>{use} keys</caption>
            <thead>
              <tr>
                <th scope="col">kid</th>
                <th scope="col">algorithm</th>
                <th scope="col">state</th>
                <th scope="col">created</th>
                <th scope="col">activated</th>
                <th scope="col">verify-until</th>
                <th scope="col">origin</th>
                <th scope="col">
                  <span class="sr-only">actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys
                .filter((k) => k.use === use)
                .map((k) => (
                  <tr key={k.kid} class={`state-${k.state}`}>
                    <td class="mono">{k.kid}</td>
                    <td>{k.alg}</td>
                    <td>
                      <span class={`badge ${k.state}`}>{k.state}</span>
                      {k.destroyedAt && <span class="sub"> material destroyed</span>}
                      {rewrap.has(k.kid) && <span class="sub"> {rewrap.get(k.kid)}</span>}
                    </td>
                    <td>{when(k.createdAt)}</td>
                    <td>{when(k.activatedAt)}</td>
                    <td>{when(k.verifyUntil)}</td>
                    <td>{k.origin ?? '—'}</td>
                    <td>
                      {k.state !== 'revoked' && k.state !== 'retired' && (
                        <button
                          type="button"
                          class="danger small"
                          aria-label={`Revoke ${k.kid}`}
                          onClick={() => revoke(k)}
                        >
                          Revoke
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
            </tbody>
          </table>
        ))}
    </section>
  );
}

function NextRotations(props: { plan: Plan }) {
  const lines = props.plan.steps
    .slice(0, 1 + 12)
    .flatMap((s) => s.actions.map((a) => ({ at: s.at, a })))
    .slice(0, 12);
  if (lines.length === 0)
    return <p class="hint">No rotation due in the next {props.plan.horizonDays} days.</p>;
  return (
    <details class="plan">
      <summary>The planner's next steps ({props.plan.horizonDays} days)</summary>
      <ol>
        {lines.map(({ at, a }) => (
          <li key={`${at}-${a.type}-${'kid' in a ? a.kid : a.use}`}>
            <span class="mono">{when(at)}</span>{' '}
            {a.type === 'generate'
              ? `generate a ${a.use} key (${a.alg}), published now, active from ${when(a.activateAt)}`
              : a.type === 'activate'
                ? `activate ${a.kid}${a.demote ? `; ${a.demote} verifies until ${a.verifyUntil ? when(a.verifyUntil) : 'rewrapped'}` : ''}`
                : a.type === 'bootstrap'
                  ? `bootstrap ${a.use} (${a.alg})`
                  : `${a.type} ${a.kid}`}
          </li>
        ))}
      </ol>
    </details>
  );
}

// ---------------------------------------------------------------------------------------------
// Audit

const HIDDEN_FIELDS = new Set(['id', 'type', 'time', 'outcome', 'actor', 'hash', 'prevHash']);

function details(event: AuditEvent): string {
  return Object.entries(event)
    .filter(([name]) => !HIDDEN_FIELDS.has(name))
    .map(([name, value]) => `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
}

function AuditView(props: { version: number }) {
  const [type, setType] = useState('');
  const [answer, setAnswer] = useState<{ events: AuditEvent[]; chain: ChainState } | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    let live = true;
    get<{ events: AuditEvent[]; chain: ChainState }>(
      `/admin/audit?limit=200${type ? `&type=${encodeURIComponent(type)}` : ''}`,
    ).then(
      (a) => {
        if (live) {
          setAnswer(a);
          setError(undefined);
        }
      },
      (err: unknown) => live && setError(messageOf(err)),
    );
    return () => {
      live = false;
    };
  }, [type, props.version]);
  const chain = answer?.chain;
  return (
    <section aria-labelledby="audit-heading">
      <h2 id="audit-heading">Audit</h2>
      <div class="toolbar">
        <label class="inline">
          Type
          <select value={type} onChange={(e) => setType((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">all types</option>
            {AUDIT_TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        {chain && (
          <p class={`chain ${chain.ok ? 'ok' : 'broken'}`} role="status">
            {chain.ok
              ? `chain verified (${chain.count} events, ${chain.source === 'sink' ? `stored in ${chain.sink ?? 'a sink'}` : 'in memory only'})`
              : `chain broken at ${chain.source === 'sink' ? `line ${chain.index + 1} of the ${chain.sink ?? 'audit'} sink` : `event ${chain.index + 1} of those in memory`}${chain.eventId ? ` (${chain.eventId})` : ''}: ${chain.reason}`}
          </p>
        )}
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {answer && (
        <table class="audit">
          <thead>
            <tr>
              <th scope="col">time</th>
              <th scope="col">type</th>
              <th scope="col">outcome</th>
              <th scope="col">actor</th>
              <th scope="col">details</th>
            </tr>
          </thead>
          <tbody>
            {answer.events.map((e) => (
              <tr key={e.id}>
                <td class="mono">{e.time.replace('T', ' ').slice(0, 19)}</td>
                <td>{e.type}</td>
                <td>{e.outcome}</td>
                <td>{[e.actor?.type, e.actor?.sub].filter(Boolean).join(' ')}</td>
                <td class="mono details">{details(e)}</td>
              </tr>
            ))}
            {answer.events.length === 0 && (
              <tr>
                <td colSpan={5}>No events{type ? ` of type ${type}` : ''} yet.</td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// Instances and health

function InstancesView(props: { version: number; health: Health | undefined }) {
  const [report, setReport] = useState<Instances | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    get<Instances>('/admin/instances').then(setReport, (err: unknown) => setError(messageOf(err)));
  }, [props.version]);
  const checks = Object.entries(props.health?.checks ?? {}).flatMap(([name, list]) =>
    list.map((c, i) => ({ name, c, key: `${name}-${c.componentId ?? i}` })),
  );
  const rewrap = props.health?.checks?.['data:rewrap'] ?? [];
  return (
    <section aria-labelledby="instances-heading">
      <h2 id="instances-heading">Instances and health</h2>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {report && (
        <table class="instances">
          <caption>
            Instances (store generation {report.generation ?? '—'}: {report.counts.current ?? 0} current,{' '}
            {report.counts.behind ?? 0} behind, {report.counts.stale ?? 0} stale)
          </caption>
          <thead>
            <tr>
              <th scope="col">instance</th>
              <th scope="col">host</th>
              <th scope="col">generation</th>
              <th scope="col">sync lag</th>
              <th scope="col">clock offset</th>
              <th scope="col">last seen</th>
              <th scope="col">state</th>
            </tr>
          </thead>
          <tbody>
            {report.instances.map((i) => (
              <tr key={i.id}>
                <td class="mono">
                  {i.id}
                  {i.id === report.self ? ' (this one)' : ''}
                </td>
                <td>
                  {i.host}:{i.pid} v{i.version}
                </td>
                <td>{i.keyringGeneration}</td>
                <td>
                  {i.syncLagMs === null ? '—' : `${i.syncLagMs} ms`}
                  {i.syncStale ? ' (store unreachable)' : ''}
                </td>
                <td>{i.clockOffsetMs === null ? '—' : `${i.clockOffsetMs} ms`}</td>
                <td>{when(i.lastSeenAt)}</td>
                <td>
                  <span class={`badge ${i.state}`}>{i.state}</span>
                </td>
              </tr>
            ))}
            {report.instances.length === 0 && (
              <tr>
                <td colSpan={7}>No instance heartbeat in the store (the heartbeat may be off).</td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {props.health && (
        <table class="health">
          <caption>
            Readiness (/health/ready):{' '}
            <span class={`badge ${props.health.status}`}>{props.health.status}</span>
          </caption>
          <thead>
            <tr>
              <th scope="col">check</th>
              <th scope="col">component</th>
              <th scope="col">status</th>
              <th scope="col">observed</th>
              <th scope="col">output</th>
            </tr>
          </thead>
          <tbody>
            {checks.map(({ name, c, key }) => (
              <tr key={key}>
                <td>{name}</td>
                <td class="mono">{c.componentId ?? ''}</td>
                <td>
                  <span class={`badge ${c.status}`}>{c.status}</span>
                </td>
                <td>
                  {c.observedValue === undefined ? '' : `${String(c.observedValue)} ${c.observedUnit ?? ''}`}
                </td>
                <td>{c.output ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Data-key rewrap</h3>
      {rewrap.length === 0 ? (
        <p class="hint">No revoked data key holds material: nothing to rewrap.</p>
      ) : (
        <ul class="rewrap">
          {rewrap.map((c) => (
            <li key={c.componentId}>
              <span class="mono">{c.componentId}</span>: {c.output}
              {typeof c.observedValue === 'number' && ` (${c.observedValue} records to go)`}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// The app

type View = 'keys' | 'audit' | 'instances';
const VIEWS: Array<[View, string]> = [
  ['keys', 'Keys'],
  ['audit', 'Audit'],
  ['instances', 'Instances and health'],
];

function App() {
  const [session, setSession] = useState<Session | undefined>();
  const [notice, setNotice] = useState<string | undefined>();
  const [view, setView] = useState<View>('keys');
  const [pending, setPending] = useState<Pending | undefined>();
  const [message, setMessage] = useState<string | undefined>();
  const [version, setVersion] = useState(0);
  const [health, setHealth] = useState<Health | undefined>();
  useEffect(() => {
    whenSignedOut((reason) => {
      setSession(undefined);
      setNotice(reason);
    });
  }, []);
  // Readiness for the rewrap progress and the health table; reloaded with every change and every 10 s.
  useEffect(() => {
    if (!session) return;
    let live = true;
    const load = () =>
      get<Health>('/health/ready').then(
        (h) => live && setHealth(h),
        () => undefined,
      );
    void load();
    return () => {
      live = false;
    };
  }, [session, version]);
  useEffect(() => {
    if (!session) return;
    const timer = setInterval(() => setVersion((v) => v + 1), 10_000);
    return () => clearInterval(timer);
  }, [session]);
  if (!session)
    return (
      <SignIn
        notice={notice}
        onSession={(s) => {
          // A new session starts on the keys, with nothing of the previous one on screen.
          setNotice(undefined);
          setMessage(undefined);
          setView('keys');
          setSession(s);
        }}
      />
    );
  return (
    <div class="app">
      <header>
        <h1>keyward console</h1>
        <nav aria-label="Views">
          {VIEWS.map(([id, label]) => (
            <button
              key={id}
              type="button"
              class={view === id ? 'current' : ''}
              aria-current={view === id ? 'page' : undefined}
              onClick={() => setView(id)}
            >
              {label}
            </button>
          ))}
        </nav>
        <p class="who">
          {session.sub} ({session.via === 'api_key' ? 'API key' : 'password'})
        </p>
        <button
          type="button"
          onClick={async () => {
            await signOut();
            setSession(undefined);
          }}
        >
          Sign out
        </button>
      </header>
      {message && (
        <p class="message" role="status">
          {message}
        </p>
      )}
      <main>
        {view === 'keys' && <KeysView ask={setPending} version={version} health={health} />}
        {view === 'audit' && <AuditView version={version} />}
        {view === 'instances' && <InstancesView version={version} health={health} />}
      </main>
      {pending && (
        <ConfirmDialog
          pending={pending}
          onDone={(done) => {
            setPending(undefined);
            if (done !== undefined) {
              setMessage(done);
              setVersion((v) => v + 1);
            }
          }}
        />
      )}
    </div>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
