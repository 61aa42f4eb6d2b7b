import { tempDir } from './cli.js';
import { describeImportLegacy } from './import-legacy.js';
import { describeKeyCommands, type StoreTarget } from './key-commands.js';
import { describeServiceCommands } from './service-commands.js';

function embedded(): StoreTarget {
  const { dir, cleanup } = tempDir();
  return { args: ['--dir', dir], dir, keywardOptions: { dir }, cleanup };
}

describeKeyCommands('embedded store', embedded);
describeServiceCommands('embedded store', embedded);
describeImportLegacy('embedded store', embedded);
