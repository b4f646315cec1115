import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendConformance } from '../../test/conformance/backend-suite.js';
import { LocalFileStorage } from './storage.js';

const root = await mkdtemp(join(tmpdir(), 'earthmem-local-'));

backendConformance({
  name: 'local_file',
  open: async () => new LocalFileStorage({ base_path: root, permissions: 'rw-r--r--' }),
});
