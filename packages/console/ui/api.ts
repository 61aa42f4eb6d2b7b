// The console's one door to the server. The credentials live in this module's variables only:
// never in storage, a cookie, the DOM or the URL. A page reload signs the operator out.

/** An answer of the keyward API that was not a success: its contract error code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Credential =
  | { kind: 'password'; access: string; refresh: string; expiresAt: number }
  | { kind: 'apiKey'; key: string };

let credential: Credential | undefined;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let onSignedOut: ((reason: string) => void) | undefined;

const base = document.querySelector<HTMLMetaElement>('meta[name="keyward-base"]')?.content ?? '';

/** Called when the session ends by itself (a refresh that failed). */
export function whenSignedOut(listener: (reason: string) => void): void {
  onSignedOut = listener;
}

async function send(
  method: string,
  path: string,
  body?: unknown,
  auth = true,
  retry = true,
): Promise<unknown> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (auth && credential?.kind === 'password') headers.authorization = `Bearer ${credential.access}`;
  if (auth && credential?.kind === 'apiKey') headers['x-api-key'] = credential.key;
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    credentials: 'omit',
    cache: 'no-store',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  // An access token refused mid-session (its signing key was revoked, its jti revoked elsewhere):
  // one refresh, then the same request again with the new token.
  if (response.status === 401 && auth && retry && credential?.kind === 'password') {
    await response.body?.cancel();
    if (await refresh()) return send(method, path, body, auth, false);
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!response.ok && !(path === '/health/ready' && response.status === 503)) {
    const problem = (parsed ?? {}) as { error?: unknown; message?: unknown };
    throw new ApiError(
      response.status,
      typeof problem.error === 'string' ? problem.error : 'http_error',
      typeof problem.message === 'string' ? problem.message : `the server answered ${response.status}`,
    );
  }
  return parsed;
}

interface TokenPair {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

function keep(pair: TokenPair): void {
  credential = {
    kind: 'password',
    access: pair.access_token,
    refresh: pair.refresh_token,
    expiresAt: Date.now() + pair.expires_in * 1000,
  };
  if (refreshTimer !== undefined) clearTimeout(refreshTimer);
  // Refresh at 80% of the lifetime, so a request never carries an expired token.
  refreshTimer = setTimeout(() => void refresh(), Math.max(1, pair.expires_in * 800));
}

async function refresh(): Promise<boolean> {
  if (credential?.kind !== 'password') return false;
  try {
    keep((await send('POST', '/auth/refresh', { refresh_token: credential.refresh }, false)) as TokenPair);
    return true;
  } catch {
    forget();
    onSignedOut?.('Your session ended; sign in again.');
    return false;
  }
}

/**
 * After `kid` was revoked: if it signed the access token in use, that token no longer verifies, so
 * refresh it now (the new one is signed by the active key) instead of failing the next request.
 */
export async function afterRevocation(kid: string): Promise<void> {
  if (credential?.kind !== 'password') return;
  let signer: unknown;
  try {
    const header = credential.access.split('.')[0] ?? '';
    signer = (JSON.parse(atob(header.replace(/-/g, '+').replace(/_/g, '/'))) as { kid?: unknown }).kid;
  } catch {
    signer = undefined;
  }
  if (signer === kid) await refresh();
}

function forget(): void {
  credential = undefined;
  if (refreshTimer !== undefined) clearTimeout(refreshTimer);
  refreshTimer = undefined;
}

/** Signs in with a username and password through `POST /auth/login`. */
export async function signInWithPassword(username: string, password: string): Promise<void> {
  forget();
  keep((await send('POST', '/auth/login', { username, password }, false)) as TokenPair);
}

/** Uses an API key (sent as `X-API-Key`) for every request. */
export function signInWithApiKey(key: string): void {
  forget();
  credential = { kind: 'apiKey', key };
}

/** Ends the session: revokes the tokens on the server (password sign-in) and forgets them. */
export async function signOut(): Promise<void> {
  const current = credential;
  if (current?.kind === 'password') {
    try {
      await send('POST', '/auth/logout', { refresh_token: current.refresh });
    } catch {
      // forgotten here either way
    }
  }
  forget();
}

/** A GET of the API with the current credential. */
export const get = <T>(path: string): Promise<T> => send('GET', path) as Promise<T>;
/** A POST of the API with the current credential and a JSON body. */
export const post = <T>(path: string, body: unknown): Promise<T> => send('POST', path, body) as Promise<T>;
