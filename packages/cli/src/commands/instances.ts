import { listInstances } from '@keyward/core';
import type { Command } from 'commander';
import { type GlobalOptions, openStore } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { isoTime, note, print, printJson, table } from '../output.js';

const ms = (value: number | null) => (value === null ? '-' : `${value} ms`);

/** Registers `keyward instances`. */
export function registerInstances(program: Command, globals: () => GlobalOptions): void {
  program
    .command('instances')
    .description(
      'the app instances registered in the store (heartbeats): generations applied, clock offset, sync lag; flags stale ones and those behind the keyring generation',
    )
    .option('--json', 'print the report as JSON for scripts')
    .option('--check', 'exit 1 unless every registered instance is current (none stale or behind)')
    .addHelpText(
      'after',
      `
An instance registers every instanceHeartbeatMs (default 10 s); its record expires after three
intervals, and it is "stale" once its last heartbeat is older than two. Before dropping an old master
key or calling a rotation complete, check that every instance is on the current generation.
Needs no master key.

Examples:
  $ keyward instances
  $ keyward instances --check && echo "every instance is on the current keyring"
  $ keyward instances --json | jq -r '.instances[] | select(.state=="behind") | .host'`,
    )
    .action(async (opts: { json?: boolean; check?: boolean }) => {
      const store = openStore(globals());
      let report: Awaited<ReturnType<typeof listInstances>>;
      try {
        report = await listInstances(store);
      } finally {
        await store.close();
      }
      if (opts.json) printJson(report);
      else {
        print(`keyring generation ${report.generation ?? '-'}`);
        print(
          table(
            [
              'ID',
              'HOST',
              'PID',
              'VERSION',
              'KEYRING',
              'REVOCATIONS',
              'CLOCK OFFSET',
              'SYNC LAG',
              'STARTED',
              'LAST SEEN',
              'STATE',
            ],
            report.instances.map((i) => [
              i.id,
              i.host,
              String(i.pid),
              i.version,
              String(i.keyringGeneration),
              String(i.revocationGeneration),
              ms(i.clockOffsetMs),
              ms(i.syncLagMs),
              isoTime(i.startedAt),
              isoTime(i.lastSeenAt),
              i.state === 'current'
                ? i.syncStale
                  ? 'current (store unreachable)'
                  : 'current'
                : i.state.toUpperCase(),
            ]),
          ),
        );
        const { current, behind, stale } = report.counts;
        note(`${report.instances.length} instances: ${current} current, ${behind} behind, ${stale} stale`);
      }
      if (opts.check && (report.instances.length === 0 || report.counts.current !== report.instances.length))
        throw new CliError(
          'instances_not_current',
          report.instances.length === 0
            ? 'no instance is registered in the store'
            : `${report.counts.behind} behind keyring generation ${report.generation ?? '-'}, ${report.counts.stale} stale`,
          EXIT.failure,
        );
    });
}
