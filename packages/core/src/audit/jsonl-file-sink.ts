import { closeSync, createWriteStream, fstatSync, fsync, openSync, readSync } from 'node:fs';
import { KeywardError } from '../errors.js';
import { verifyAuditFile } from './chain.js';
import type { AuditSink } from './sinks.js';

const CHUNK = 64 * 1024;

/** The last non-empty line of a file, read backwards from its end; `undefined` if none. */
function readLastLine(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeywardError('audit_file_invalid', 'Cannot open the audit file', { cause: err });
  }
  try {
    let end = fstatSync(fd).size;
    let tail = Buffer.alloc(0);
    while (end > 0) {
      const start = Math.max(0, end - CHUNK);
      const chunk = Buffer.alloc(end - start);
      readSync(fd, chunk, 0, chunk.length, start);
      tail = Buffer.concat([chunk, tail]);
      end = start;
      const text = tail.toString('utf8').trimEnd();
      const newline = text.lastIndexOf('\n');
      if (newline >= 0) return text.slice(newline + 1);
      if (end === 0) return text === '' ? undefined : text;
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function lastHashOf(path: string): string | undefined {
  const line = readLastLine(path);
  if (line === undefined) return undefined;
  try {
    const event = JSON.parse(line) as { hash?: unknown };
    if (typeof event.hash === 'string') return event.hash;
  } catch {
    // fall through to the error below
  }
  // Refuse to fork the chain silently: a torn last line needs an operator's decision.
  throw new KeywardError(
    'audit_file_invalid',
    'The last line of the audit file is not an audit event; cannot continue its hash chain',
  );
}

/**
 * A sink that appends one JSON line per event to a file (created with mode 0600). On open it
 * reads the file's last line, so a new audit log continues the same hash chain across restarts.
 * One process should write a given file at a time. `flush()` waits for pending writes and fsyncs.
 *
 * Throws `audit_file_invalid` when the file exists but its last line is not an audit event.
 *
 * @example
 * ```ts
 * const audit = createAuditLog({ sinks: [jsonlFileSink('/var/log/keyward/audit.jsonl')] });
 * // later: await verifyAuditFile('/var/log/keyward/audit.jsonl')
 * ```
 */
export function jsonlFileSink(path: string): AuditSink {
  if (typeof path !== 'string' || path === '') {
    throw new KeywardError('config_invalid', 'jsonlFileSink: `path` must be a non-empty string');
  }
  const lastHash = lastHashOf(path);
  const stream = createWriteStream(path, { flags: 'a', mode: 0o600 });
  let failure: Error | undefined;
  stream.on('error', (err) => {
    failure = err;
  });
  let closed = false;

  const drained = () =>
    new Promise<void>((resolve, reject) => {
      if (failure !== undefined) return reject(failure);
      // An empty write calls back once every earlier write has reached the file.
      stream.write('', (err) => (err ? reject(err) : resolve()));
    });

  return {
    name: 'jsonl',
    lastHash,
    write(event) {
      if (failure !== undefined) throw failure;
      if (closed) throw new KeywardError('audit_file_invalid', 'The audit file sink is closed');
      stream.write(`${JSON.stringify(event)}\n`);
    },
    async flush() {
      if (closed) return;
      await drained();
      const fd = (stream as unknown as { fd: number | null }).fd;
      if (typeof fd === 'number') {
        await new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
      }
    },
    async verify() {
      await this.flush?.();
      return verifyAuditFile(path);
    },
    async close() {
      if (closed) return;
      await this.flush?.();
      closed = true;
      await new Promise<void>((resolve) => stream.end(() => resolve()));
    },
  };
}
