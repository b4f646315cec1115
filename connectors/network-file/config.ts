import { z } from 'zod';
import { objectLayoutShape, retryShape } from '../../src/config/common.js';

/**
 * `type: network_file` — NetworkFileStorage: a network file system that the host has already
 * mounted (NFS, SMB/CIFS, sshfs). earth-memory never mounts anything itself; it checks that the
 * mount is there, is what the file says, and is writable, then writes like `local_file`.
 */
export const networkFileBackendSchema = z
  .object({
    type: z.literal('network_file'),
    /** nfs (nfs, nfs4), smb (cifs, smb3), sshfs (fuse.sshfs), or local: any mounted file system. */
    protocol: z.enum(['nfs', 'smb', 'sshfs', 'local']),
    /** Where the share is mounted on this host; must be a mount point. */
    mount_point: z.string().regex(/^\//, 'expected an absolute path'),
    /** The file server; when given, the mount's source must name it. */
    server: z.string().min(1).optional(),
    /** The exported path on the server; when given, the mount's source must end with it. */
    remote_path: z.string().min(1).optional(),
    /** Mount options the share should have (e.g. rsize, wsize, actimeo); a mismatch is a warning. */
    connection_options: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
    /** Folder under the mount point for this tier. */
    base_path: z.string().default(''),
    permissions: z
      .string()
      .regex(/^([r-][w-][x-]){3}$|^0?[0-7]{3}$/, 'expected rwxrwxrwx letters like "rw-r--r--" or octal like "0644"')
      .default('rw-r--r--'),
    ...objectLayoutShape,
    ...retryShape,
  })
  .strict();
export type NetworkFileBackendConfig = z.output<typeof networkFileBackendSchema>;

export const fsTypesByProtocol: Record<NetworkFileBackendConfig['protocol'], string[] | null> = {
  nfs: ['nfs', 'nfs4'],
  smb: ['cifs', 'smb3'],
  sshfs: ['fuse.sshfs'],
  local: null,
};
