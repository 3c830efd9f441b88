// What the native addon is built from, as one string (native/build.mjs --if-changed): the addon
// needs a rebuild exactly when it changes. Its own module so that a test can check it.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * @param {{ dir: string, libtorch?: string, gypArgs?: string[], env?: Record<string, string | undefined>, libDirs?: string[], onednnHeader?: string }} o
 *   dir: the native/ folder; libtorch: a LIBTORCH folder (else Debian's under /usr/lib).
 */
export function buildStamp(o) {
  const env = o.env ?? process.env;
  const h = createHash('sha256');
  const files = ['binding.gyp', 'build.mjs', 'build_stamp.mjs', ...readdirSync(path.join(o.dir, 'src')).sort().map((n) => path.join('src', n))];
  for (const f of files) {
    const p = path.join(o.dir, f);
    if (existsSync(p)) h.update(f).update(readFileSync(p));
  }
  return JSON.stringify({
    sources: h.digest('hex'),
    libtorch: libtorchIdentity(o.libDirs ?? (o.libtorch ? [path.join(o.libtorch, 'lib')] : debianLibDirs())),
    node: { version: process.version, abi: process.versions.modules, arch: process.arch, napi: process.versions.napi },
    // Not npm_config_nodedir: npm sets it, a plain `node build.mjs` does not; Node's version names the headers.
    env: { LIBTORCH: o.libtorch ?? null, LIBTORCH_CXX11_ABI: env.LIBTORCH_CXX11_ABI ?? null },
    // binding.gyp builds oneDNN in when its headers are there (Debian's libdnnl-dev).
    onednn: !o.libtorch && existsSync(o.onednnHeader ?? '/usr/include/oneapi/dnnl/dnnl.hpp'),
    args: o.gypArgs ?? [],
  }, null, 2) + '\n';
}

/** The libtorch_cpu library the build links: its resolved path, size and modification time. */
function libtorchIdentity(dirs) {
  for (const d of dirs) {
    const f = path.join(d, 'libtorch_cpu.so');
    if (existsSync(f)) {
      const real = realpathSync(f);
      const st = statSync(real);
      return { file: real, size: st.size, mtime: st.mtimeMs };
    }
  }
  return null;
}

function debianLibDirs() {
  let multiarch = [];
  try { multiarch = readdirSync('/usr/lib').filter((n) => n.includes('-linux-')).map((n) => path.join('/usr/lib', n)); } catch { /* not Linux */ }
  return ['/usr/lib', ...multiarch];
}
