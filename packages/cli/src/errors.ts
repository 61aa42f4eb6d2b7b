import { isKeywardError } from '@keyward/core';
import { CommanderError } from 'commander';

/** Exit codes of the `keyward` command. */
export const EXIT = {
  ok: 0,
  /** The operation failed (unknown kid, wrong master key, unreachable store…). */
  failure: 1,
  /** Bad usage or a refusal (missing confirmation, existing file or keyring without `--force`). */
  usage: 2,
} as const;

/**
 * An error the CLI reports as one line and an exit code. `code` is a stable, grep-able token
 * (a `KeywardError` code, or a CLI one such as `confirmation_required`).
 *
 * @example
 * ```ts
 * throw new CliError('confirmation_required', 'refusing to revoke without --yes on a non-interactive shell', EXIT.usage)
 * ```
 */
export class CliError extends Error {
  readonly code: string;
  readonly exitCode: number;

  constructor(code: string, message: string, exitCode: number = EXIT.failure) {
    super(message);
    this.name = 'CliError';
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** One line, whatever the message holds: an operator greps it, a script parses it. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * Turns any error into the line printed on stderr and the exit code. Unknown errors print their
 * class name only: their message may hold anything (an ioredis error quotes the URL).
 *
 * @example
 * ```ts
 * const { line, exitCode } = describeError(err) // 'keyward: no key with kid "x" [key_not_found]', 1
 * ```
 */
export function describeError(err: unknown): { line: string; exitCode: number } {
  if (err instanceof CliError)
    return { line: `keyward: ${oneLine(err.message)} [${err.code}]`, exitCode: err.exitCode };
  if (isKeywardError(err)) {
    const usage = err.code === 'invalid_argument' || err.code === 'config_invalid';
    return {
      line: `keyward: ${oneLine(err.message)} [${err.code}]`,
      exitCode: usage ? EXIT.usage : EXIT.failure,
    };
  }
  if (err instanceof CommanderError) return { line: oneLine(err.message), exitCode: EXIT.usage };
  const name = err instanceof Error ? err.name : typeof err;
  return {
    line: `keyward: unexpected ${name}; rerun with KEYWARD_DEBUG=1 for details [internal_error]`,
    exitCode: EXIT.failure,
  };
}
