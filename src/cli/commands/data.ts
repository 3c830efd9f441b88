/** `r2r data fetch` (download the official CIFAR-10 binary archive) and `r2r data info`. */
import { Command, Option } from '@commander-js/extra-typings';
import { channelStats, CIFAR10_CLASSES, DEFAULT_DATA_DIR, locateCifar10, readCifar10File } from '../../data/index.ts';
import { CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, findBatchFile } from '../../data/cifar10.ts';
import type { ImageSet } from '../../data/dataset.ts';
import { CIFAR10_MD5, CIFAR10_URL, DEFAULT_FETCH_TIMEOUT_S, fetchCifar10 } from '../../data/fetch.ts';
import { createProgress } from '../progress.ts';
import { formatTable, jsonOption, parseNumber, printJson } from './common.ts';

export function register(program: Command): void {
  const data = program.command('data').description('Get and inspect the CIFAR-10 data.');

  data
    .command('fetch')
    .description(`Download the official CIFAR-10 binary archive, check its MD5, unpack and validate it into DIR (atomically: an interrupted fetch leaves nothing half-written).`)
    .addOption(new Option('--url <url>', 'archive to download').default(CIFAR10_URL))
    .addOption(new Option('--dir <dir>', 'where to put the batch files').default(DEFAULT_DATA_DIR))
    .addOption(new Option('--md5 <hex>', `expected MD5 of the archive (default: ${CIFAR10_MD5} for the official URL, unchecked for others)`))
    .addOption(new Option('--timeout <s>', 'give up after this many seconds without data from the server').argParser(parseNumber('--timeout', { above: 0 })).default(DEFAULT_FETCH_TIMEOUT_S))
    .option('--force', 'download again even when the data is already there')
    .addOption(jsonOption('{dir, skipped, bytes, md5, records}'))
    .option('--quiet', 'no progress output')
    .action(async (o) => {
      let bar: ReturnType<typeof createProgress> | undefined;
      // Ctrl-C aborts the fetch, which removes its temporaries before the process ends (status 130).
      const interrupt = new AbortController();
      const stop = () => interrupt.abort();
      process.once('SIGINT', stop).once('SIGTERM', stop);
      let r;
      try {
        r = await fetchCifar10({
          url: o.url, dir: o.dir, md5: o.md5, force: o.force, timeout: o.timeout, signal: interrupt.signal,
          onProgress: (bytes, total) => {
            bar ??= createProgress('download (MB)', Math.ceil((total ?? 170e6) / 1e6), { quiet: o.quiet });
            bar.update(Math.floor(bytes / 1e6));
          },
        });
      } catch (e) {
        if (!interrupt.signal.aborted) throw e;
        bar?.stop();
        process.stderr.write(`r2r: ${(e as Error).message}\n`);
        process.exit(130);
      } finally {
        process.off('SIGINT', stop).off('SIGTERM', stop);
      }
      bar?.stop();
      if (o.json) { printJson(r); return; }
      if (r.skipped) console.log(`CIFAR-10 is already in ${r.dir} (use --force to download again)`);
      else console.log(`CIFAR-10 unpacked into ${r.dir} (${(r.bytes / 1e6).toFixed(1)} MB archive, MD5 ${r.md5}); records: ${Object.entries(r.records).map(([f, n]) => `${f} ${n}`).join(', ')}\nuse it with --data ${r.dir} or R2R_DATA=${r.dir}`);
    });

  data
    .command('info')
    .description('Where the CIFAR-10 data is found (--data, R2R_DATA or ./data/cifar10), its files, record and class counts, and the training set\'s channel statistics.')
    .addOption(new Option('--data <dir>', 'CIFAR-10 directory (default: R2R_DATA, else ./data/cifar10)'))
    .addOption(jsonOption('{dir, classes, files, trainChannelStats}'))
    .action((o) => {
      const dir = locateCifar10(o.data);
      const files = [...CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE].map((f) => {
        const path = findBatchFile(dir, f);
        const set = path ? readCifar10File(path) : undefined;
        return { file: f, path: path ?? null, records: set?.n ?? 0, classCounts: set ? counts(set) : null, set };
      });
      const train = files.filter((f) => f.file !== CIFAR10_TEST_FILE && f.set).map((f) => f.set!);
      const all: ImageSet | undefined = train.length ? { ...train[0], pixels: concat(train.map((t) => t.pixels)), n: train.reduce((a, t) => a + t.n, 0) } : undefined;
      const stats = all ? channelStats(all) : null;
      const out = { dir, classes: CIFAR10_CLASSES, files: files.map(({ set: _s, ...f }) => f), trainChannelStats: stats };
      if (o.json) { printJson(out); return; }
      console.log(`CIFAR-10 in ${dir}`);
      console.log(formatTable(['file', 'records', 'per class (airplane..truck)'], files.map((f) => [f.path ?? `${f.file} (missing)`, f.records, f.classCounts?.join(' ') ?? '-'])));
      if (stats) console.log(`training-set channel mean ${stats.mean.map((m) => m.toFixed(4)).join('/')}, std ${stats.std.map((s) => s.toFixed(4)).join('/')} (RGB, pixels scaled to [0, 1])`);
    });
}

function counts(s: ImageSet): number[] {
  const c = new Array(10).fill(0);
  for (const l of s.labels) c[l]++;
  return c;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
