/**
 * Atomic writes: write to a temporary sibling, fsync, then rename over the target, so a crash or
 * a failed run never leaves a half-written file or checkpoint behind.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync, existsSync } from 'node:fs';
import { FileError } from '../errors.ts';
import { basename, dirname, join } from 'node:path';

/** `.<name>.tmp-<pid>-<hex>[<suffix>]`: every temporary this project writes, so a later run can tell whose it is. */
export function tmpSibling(path: string, suffix = ''): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}${suffix}`);
}

/** Exactly the names tmpSibling makes (and writeDirAtomic's `.old`), so no one else's file matches. */
const TMP_NAME = /^\..+\.tmp-(\d+)-[0-9a-f]{8}(\.old|\.staging|\.tar\.gz)?$/;

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/**
 * Removes temporaries in `dir` left by a process that no longer runs (killed during a write:
 * `kill -9`, power loss). Those of live processes are left alone: they may be mid-write.
 * Returns the names removed.
 */
export function removeStaleTemps(dir: string): string[] {
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  const removed: string[] = [];
  for (const n of names) {
    const m = TMP_NAME.exec(n);
    if (!m || alive(Number(m[1]))) continue;
    rmSync(join(dir, n), { recursive: true, force: true });
    removed.push(n);
  }
  return removed;
}

/**
 * Refuses an output file path that cannot be written as a file: a directory, or a path below a
 * file. `what` names the option or role in the message (e.g. '--out').
 */
export function checkOutputFile(path: string, what: string, example = 'out'): void {
  for (let d = path; ; d = dirname(d)) {
    if (existsSync(d)) {
      const isDir = statSync(d).isDirectory();
      if (d === path && isDir) throw new FileError(`${what} ${path} is a directory; give a file name, e.g. ${join(path, example)}`);
      if (d !== path && !isDir) throw new FileError(`${what} ${path}: ${d} is a file, not a directory`);
      return;
    }
    if (dirname(d) === d) return;
  }
}

/**
 * Refuses a directory path that cannot be one: a file, or a path below a file. `what` names
 * the option or role in the message (e.g. '--dir').
 */
export function checkOutputDir(path: string, what: string): void {
  for (let d = path; ; d = dirname(d)) {
    if (existsSync(d)) {
      if (!statSync(d).isDirectory()) throw new FileError(`${what} ${path}: ${d === path ? 'is a file' : `${d} is a file`}, not a directory`);
      return;
    }
    if (dirname(d) === d) return;
  }
}

/** An fs error as a FileError naming the path (no stack trace reaches the user). */
function fileError(e: unknown, path: string): unknown {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code !== 'string' || typeof err.syscall !== 'string') return e;
  const why: Record<string, string> = { EISDIR: 'it is a directory', ENOTDIR: 'a parent of it is a file', EACCES: 'permission denied', EPERM: 'not permitted', ENOSPC: 'no space left on the device', EROFS: 'read-only file system' };
  return new FileError(`cannot write ${path}: ${why[err.code] ?? err.code}`, { cause: e });
}

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  checkOutputFile(path, 'output');
  try { mkdirSync(dirname(path), { recursive: true }); } catch (e) { throw fileError(e, path); }
  const tmp = tmpSibling(path);
  try {
    const fd = openSync(tmp, 'w');
    try {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally { closeSync(fd); }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw fileError(e, path);
  }
}

/**
 * Builds a directory under a temporary name with `fill(tmpDir)` and then swaps it into place.
 * An existing directory at `path` is replaced only after the new one is complete.
 */
export function writeDirAtomic(path: string, fill: (tmpDir: string) => void): void {
  mkdirSync(dirname(path), { recursive: true });
  removeStaleTemps(dirname(path));
  const tmp = tmpSibling(path);
  const old = `${tmp}.old`;
  mkdirSync(tmp, { recursive: true });
  try {
    fill(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  // rename() cannot replace a non-empty directory: move the old one aside first, then drop it.
  const had = existsSync(path);
  if (had) renameSync(path, old);
  try {
    renameSync(tmp, path);
  } catch (e) {
    if (had) renameSync(old, path);
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  if (had) rmSync(old, { recursive: true, force: true });
}
