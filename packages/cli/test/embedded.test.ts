import { tempDir } from './cli.js';
import { describeKeyCommands } from './key-commands.js';

describeKeyCommands('embedded store', () => {
  const { dir, cleanup } = tempDir();
  return { args: ['--dir', dir], dir, cleanup };
});
