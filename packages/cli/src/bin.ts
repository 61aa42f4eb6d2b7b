#!/usr/bin/env node
import { CommanderError } from 'commander';
import { describeError } from './errors.js';
import { createProgram } from './program.js';

try {
  await createProgram().parseAsync(process.argv);
  process.exit(0);
} catch (err) {
  if (err instanceof CommanderError) {
    // commander already printed its message (or the help / version it was asked for).
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  const { line, exitCode } = describeError(err);
  process.stderr.write(`${line}\n`);
  if (process.env.KEYWARD_DEBUG === '1') console.error(err);
  process.exit(exitCode);
}
