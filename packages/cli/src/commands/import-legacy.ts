import { readFileSync } from 'node:fs';
import {
  computeVerifyUntil,
  type KeyRecord,
  KeyringRepository,
  legacyKid,
  parseDuration,
  transition,
} from '@keyward/core';
import type { Command } from 'commander';
import { type GlobalOptions, withKeyward } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { print } from '../output.js';

/** One entry of the reference system's `.keys` file. */
interface ReferenceKey {
  id: string;
  key: string;
  active?: boolean;
  notes?: string;
  created_at?: string;
}

interface ImportCandidate {
  kid: string;
  secret: string;
  createdAt: number;
  notes: string;
  /** The key the reference deployment signs with. */
  current: boolean;
}

/**
 * True for what a masked secret looks like (pydantic's SecretStr prints `**********`): such a file
 * holds no key, and importing it would make an HMAC key anybody can guess.
 */
function looksMasked(value: string): boolean {
  return value.trim() === '' || /^[*•xX.\s-]+$/.test(value) || value.includes('***');
}

function readText(path: string, option: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new CliError('invalid_argument', `cannot read ${option} ${path}`, EXIT.usage);
  }
}

function parseKeysFile(path: string): ImportCandidate[] {
  let entries: unknown;
  try {
    entries = JSON.parse(readText(path, '--keys-file'));
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(
      'invalid_argument',
      `${path} is not JSON (expected a list of {id, key, active, notes, created_at})`,
      EXIT.usage,
    );
  }
  if (!Array.isArray(entries))
    throw new CliError('invalid_argument', `${path} must hold a JSON list of keys`, EXIT.usage);
  const masked: string[] = [];
  const out: ImportCandidate[] = [];
  for (const [i, raw] of (entries as ReferenceKey[]).entries()) {
    if (typeof raw?.id !== 'string' || raw.id === '' || raw.id.length > 128 || typeof raw.key !== 'string') {
      throw new CliError(
        'invalid_argument',
        `${path} entry ${i + 1} needs a string id (1–128 chars) and a string key`,
        EXIT.usage,
      );
    }
    if (looksMasked(raw.key)) {
      masked.push(raw.id.slice(0, 64));
      continue;
    }
    const createdAt = raw.created_at ? Date.parse(raw.created_at) : Number.NaN;
    out.push({
      kid: raw.id,
      secret: raw.key,
      createdAt: Number.isFinite(createdAt) ? createdAt : Date.now(),
      notes: `imported from .keys${raw.notes ? `: ${String(raw.notes).slice(0, 200)}` : ''}`,
      current: raw.active === true,
    });
  }
  if (masked.length > 0) {
    throw new CliError(
      'legacy_key_masked',
      `${path} holds a masked value instead of the key for ${masked.join(', ')}; recover the real keys (the reference system may have written "**********"); nothing imported`,
    );
  }
  return out;
}

/** Registers `keyward import-legacy`. */
export function registerImportLegacy(program: Command, globals: () => GlobalOptions): void {
  program
    .command('import-legacy')
    .description(
      "import a reference-system deployment's JWT_SECRET and .keys file as HS256 keys, keeping their kids",
    )
    .option(
      '--jwt-secret-file <file>',
      'file holding JWT_SECRET (default: the JWT_SECRET environment variable)',
    )
    .option(
      '--keys-file <file>',
      "the reference system's .keys file (JSON list of {id, key, active, notes, created_at})",
    )
    .option(
      '--verify-for <duration>',
      'how long imported keys keep verifying old tokens (e.g. 30d, 12h)',
      '30d',
    )
    .option(
      '--activate',
      "make the reference system's current key (JWT_SECRET, else the active .keys entry) keyward's signing key",
    )
    .addHelpText(
      'after',
      '\nImported keys verify only (state retiring) until --verify-for has passed, unless --activate.\nExamples:\n  $ JWT_SECRET=... keyward import-legacy --keys-file /srv/app/.keys\n  $ keyward import-legacy --jwt-secret-file /run/secrets/jwt --activate',
    )
    .action(
      async (opts: { jwtSecretFile?: string; keysFile?: string; verifyFor: string; activate?: boolean }) => {
        const g = globals();
        const verifyFor = parseDuration(opts.verifyFor, '--verify-for');
        const candidates: ImportCandidate[] = [];
        const jwtSecret = opts.jwtSecretFile
          ? readText(opts.jwtSecretFile, '--jwt-secret-file').trim()
          : process.env.JWT_SECRET;
        if (jwtSecret !== undefined) {
          if (looksMasked(jwtSecret))
            throw new CliError(
              'legacy_key_masked',
              'JWT_SECRET holds a masked value, not a key; nothing imported',
            );
          candidates.push({
            kid: await legacyKid(jwtSecret),
            secret: jwtSecret,
            createdAt: Date.now(),
            notes: 'imported JWT_SECRET',
            current: true,
          });
        }
        if (opts.keysFile) {
          const fromFile = parseKeysFile(opts.keysFile);
          // The reference system signs with JWT_SECRET when it is set, else with its active .keys entry.
          if (jwtSecret !== undefined) for (const c of fromFile) c.current = false;
          candidates.push(...fromFile);
        }
        if (candidates.length === 0) {
          throw new CliError(
            'invalid_argument',
            'nothing to import: set JWT_SECRET or pass --jwt-secret-file and/or --keys-file',
            EXIT.usage,
          );
        }
        const current = candidates.filter((c) => c.current).sort((a, b) => b.createdAt - a.createdAt)[0];
        if (opts.activate && !current)
          throw new CliError(
            'invalid_argument',
            '--activate: no JWT_SECRET and no active .keys entry',
            EXIT.usage,
          );

        await withKeyward(g, { audit: true }, async (kw, master) => {
          const repo = new KeyringRepository(kw.store, master, kw.now);
          let imported: string[] = [];
          let skipped: string[] = [];
          await repo.update((doc) => {
            if (!doc) throw new CliError('keyring_missing', 'no keyring: run `keyward init` first');
            const now = kw.now();
            const existing = new Map(repo.unseal(doc).map((k) => [k.record.kid, k]));
            imported = [];
            skipped = [];
            let records: KeyRecord[] = doc.keys.map(({ sealed: _sealed, ...r }) => r);
            const added = [];
            for (const c of candidates) {
              const k = Buffer.from(c.secret, 'utf8').toString('base64url');
              const before = existing.get(c.kid);
              if (before) {
                if (before.material.k !== k) {
                  throw new CliError(
                    'key_conflict',
                    `kid ${c.kid.slice(0, 64)} already exists in the keyring with different material; nothing imported`,
                  );
                }
                skipped.push(c.kid);
                continue;
              }
              const activate = opts.activate === true && c === current;
              const record: KeyRecord = activate
                ? {
                    kid: c.kid,
                    use: 'sig',
                    alg: 'HS256',
                    state: 'active',
                    origin: 'imported',
                    createdAt: c.createdAt,
                    activatedAt: now,
                    notes: c.notes,
                  }
                : {
                    kid: c.kid,
                    use: 'sig',
                    alg: 'HS256',
                    state: 'retiring',
                    origin: 'imported',
                    createdAt: c.createdAt,
                    retiringAt: now,
                    verifyUntil: now + verifyFor,
                    notes: c.notes,
                  };
              if (activate) {
                records = records.map((r) =>
                  r.use === 'sig' && r.state === 'active'
                    ? transition(r, 'retiring', now, { verifyUntil: computeVerifyUntil(now, kw.policy) })
                    : r,
                );
              }
              records.push(record);
              added.push({ record, material: { kty: 'oct', k } });
              imported.push(c.kid);
            }
            return added.length === 0 ? undefined : { records, added };
          });
          await kw.sync.refresh();
          for (const kid of imported) {
            kw.audit.emit({
              type: 'key.generated',
              kid,
              use: 'sig',
              alg: 'HS256',
              actor: { type: 'operator', id: 'import-legacy' },
            });
          }
          print(
            `imported ${imported.length} HS256 key(s)${imported.length ? `: ${imported.join(', ')}` : ''}`,
          );
          if (skipped.length) print(`already present (same material): ${skipped.join(', ')}`);
          if (opts.activate && current && imported.includes(current.kid))
            print(`${current.kid} is now the active signing key`);
        });
      },
    );
}
