/**
 * Small real filesystems for disk-fault tests, so a full or read-only disk is the kernel's own
 * answer and the machine's disks are never touched (root ignores file permissions, so chmod
 * cannot fake either). Both need root and mount(8); they return undefined otherwise, and the
 * tests skip saying so. Unmounted (and a loop device detached) by `unmount()`.
 *
 * - `mountTmpfs`: a size-limited tmpfs; `fill()` takes its last byte, `readOnly()` remounts it
 *   read-only (Linux refuses that while a file on it is open for writing, so only between runs).
 * - `mountFailingExt4`: ext4 in a loop file, mounted errors=remount-ro; `fail()` makes ext4 report
 *   an error (sysfs trigger_fs_error), and the kernel turns it read-only at once under the files
 *   the server holds open: what a failing disk does to a running server.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { tempDir } from './server.ts';

export const SKIP_DISK = 'needs root and mount(8) for a scratch filesystem';

export interface ScratchDisk { dir: string; unmount(): void }
export interface Tmpfs extends ScratchDisk { fill(): void; unfill(): void; readOnly(): void; writable(): void }
export interface FailingDisk extends ScratchDisk { fail(): void }

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();

function mount(args: string[]): ScratchDisk | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const dir = tempDir('clipper-disk-');
  try {
    run('mount', [...args, dir]);
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  let mounted = true;
  return {
    dir,
    unmount() {
      if (!mounted) return;
      mounted = false;
      try {
        run('umount', ['-l', dir]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

export function mountTmpfs(size = '16m'): Tmpfs | undefined {
  const disk = mount(['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs']);
  if (!disk) return undefined;
  const filler = join(disk.dir, 'filler');
  return {
    ...disk,
    fill() {
      const fd = openSync(filler, 'a');
      try {
        for (const chunk of [Buffer.alloc(1 << 20), Buffer.alloc(4096), Buffer.alloc(1)]) {
          try {
            for (;;) writeSync(fd, chunk);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
          }
        }
      } finally {
        closeSync(fd);
      }
    },
    unfill: () => rmSync(filler, { force: true }),
    readOnly: () => { run('mount', ['-o', 'remount,ro', disk.dir]); },
    writable: () => { run('mount', ['-o', 'remount,rw', disk.dir]); },
  };
}

export function mountFailingExt4(sizeMb = 64): FailingDisk | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const image = join(tempDir('clipper-ext4-'), 'disk.img');
  try {
    writeFileSync(image, '');
    execFileSync('truncate', ['-s', `${sizeMb}M`, image]);
    run('mkfs.ext4', ['-q', '-F', image]);
  } catch {
    rmSync(join(image, '..'), { recursive: true, force: true });
    return undefined;
  }
  const disk = mount(['-o', 'loop,errors=remount-ro', image]);
  const device = disk ? basename(run('findmnt', ['-n', '-o', 'SOURCE', disk.dir])) : '';
  const trigger = `/sys/fs/ext4/${device}/trigger_fs_error`;
  if (!disk || !existsSync(trigger)) {
    disk?.unmount();
    rmSync(join(image, '..'), { recursive: true, force: true });
    return undefined;
  }
  return {
    dir: disk.dir,
    fail: () => writeFileSync(trigger, 'clipper test: disk failure\n'),
    unmount() {
      disk.unmount();
      rmSync(join(image, '..'), { recursive: true, force: true });
    },
  };
}

/** Test options: skip, saying why, where a scratch disk of this kind cannot be mounted. */
export function needsDisk(kind: 'tmpfs' | 'failing-ext4'): { skip: string | false } {
  const disk = kind === 'tmpfs' ? mountTmpfs('1m') : mountFailingExt4(16);
  disk?.unmount();
  return { skip: disk ? false : `${SKIP_DISK}${kind === 'tmpfs' ? '' : ' (ext4 in a loop file)'}` };
}
