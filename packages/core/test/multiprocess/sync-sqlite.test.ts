/**
 * The multi-process sync suite (sync-suite.ts) on one SQLite file shared by the processes
 * (announcements through the polled events table; there is no feed connection to cut).
 */
import { describe } from 'vitest';
import { sqliteDriver } from './sync-drivers.js';
import { syncSuite } from './sync-suite.js';

describe('several processes on one SQLite file', () => {
  syncSuite(sqliteDriver());
});
