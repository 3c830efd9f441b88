/** `r2r experiment`: the paper's runs (table 5) and their from-scratch baselines, by name or by suite. */
import { Command, Option } from '@commander-js/extra-typings';
import type { DatasetName } from '../../data/index.ts';
import type { EngineName } from '../../engines/registry.ts';
import { UsageError } from '../../errors.ts';
import { findRun, PRESET_NAMES, PRESETS, type PresetName, RUNS, scaleRun, SUITES, suiteRuns, type RunDef } from '../../experiments/catalog.ts';
import { runExperiments, runExperimentSeeds, type RunOutcome } from '../../experiments/runner.ts';
import { seededText } from '../../experiments/seeds.ts';
import { GPT_GROWTH_METHODS, GPT_GROWTH_PRESETS, gptGrowthRuns, gptGrowthText, runGptGrowth, type GptGrowthMethod } from '../../experiments/gpt_growth.ts';
import { parseTransformSpec } from '../../train/schedule.ts';
import { readTextDataset } from '../../data/text.ts';
import { getEngine } from '../../engines/registry.ts';
import { summaryText } from '../../experiments/summary.ts';
import { cliHooks, dataDirOption, datasetOption, deviceOption, engineOptions, limitOption, tfjsBackendOption, threadsOption, valLimitOption } from './train.ts';
import { engineOption, formatTable, jsonOption, openEngine, parseInteger, printJson } from './common.ts';

export function register(program: Command): void {
  program
    .command('experiment')
    .description('Run experiments of the paper\'s table 5 by name (e.g. NCT-R2WiderR; FFT- is accepted for FTT-) or a whole --suite. Teachers are trained once and cached under OUT/.teachers/; results go to OUT/<suite>/<name>/ with a summary table in OUT/<suite>/summary.md. A failing run is recorded and the others go on.')
    .argument('[names...]', 'experiment names (see --list)')
    .option('--list', 'list every experiment with its hyper-parameters')
    .addOption(new Option('--suite <suites>', `run whole suites, comma-separated: ${[...SUITES, 'all'].join(', ')}; or gpt-growth (a GPT grown by each method vs the target trained from scratch, on --data-text)`).argParser((v) => v.split(',').map((x) => x.trim()).filter(Boolean)))
    .addOption(new Option('--preset <p>', `quick: ${PRESETS.quick.description}; standard: ${PRESETS.standard.description}; paper: ${PRESETS.paper.description}`).choices(PRESET_NAMES).default('quick' as PresetName))
    .addOption(dataDirOption()).addOption(datasetOption()).addOption(limitOption()).addOption(valLimitOption())
    .addOption(new Option('--data-text <file>', 'gpt-growth: a UTF-8 text file or the name tinyshakespeare (default)'))
    .addOption(new Option('--growth-methods <list>', `gpt-growth: growth runs, comma-separated (default ${GPT_GROWTH_METHODS.join(',')})`).argParser((v) => v.split(',').map((x) => x.trim()).filter(Boolean)))
    .addOption(new Option('--growth-options <kv>', 'gpt-growth: options appended to every growth transform, e.g. init=copy or scale=0.5:seed=3 (see r2r train --help)'))
    .addOption(new Option('--out <dir>', 'results root').default('runs'))
    .addOption(new Option('--seed <n>', 'seed for initialisation, shuffling and transforms').argParser(parseInteger('--seed')).default(0))
    .addOption(new Option('--seeds <n|list>', 'run every experiment for several seeds: a count N (seeds SEED..SEED+N-1) or a comma-separated list; each seed goes to OUT/seed-<s>/ and OUT/summary-<suite>.md gives the mean and spread per run (gpt-growth: its own layout; default the preset\'s seeds, quick 0, paper 0,1,2)').argParser(parseSeeds))
    .addOption(new Option('--epochs <n>', 'override the preset\'s epochs for every run (transforms and drops rescaled)').argParser(parseInteger('--epochs', 1)))
    .option('--resume', 'skip completed runs and continue interrupted ones from their checkpoints')
    .option('--overwrite', 'replace runs already in OUT (default: refuse before anything runs, so no run is lost)')
    .option('--reset-optimizer', 'fresh optimizer state at every transform (default: carried over and mapped)')
    .addOption(new Option('--keep <n>', 'epoch checkpoints kept per run; 0 removes them when a run completes (final/ stays)').argParser(parseInteger('--keep', 0)).default(2))
    .option('--retrain-teachers', 'train teachers again even when a cached one matches')
    .addOption(engineOption()).addOption(tfjsBackendOption()).addOption(deviceOption()).addOption(threadsOption())
    .addOption(jsonOption('the list (with --list) or {outcomes, summaries}'))
    .option('--quiet', 'no progress output')
    .action(async (names, o) => {
      if (o.list) {
        const preset = PRESETS[o.preset];
        const rows = RUNS.map((r) => ({ ...r, preset: preset.name, scaled: scaleRun(r, preset) }));
        if (o.json) { printJson(rows); return; }
        console.log(formatTable(['name', 'suite', 'role', 'start', 'transforms', 'lr', 'lr drops', 'weight decay', `epochs (${preset.name})`],
          rows.map((r) => [r.name + (r.extra ? ' *' : ''), r.suite, r.role, startText(r), r.scaled.transforms.join(' ') || '-', String(r.lr), r.scaled.lrDrops.join(' ') || '-', String(r.weightDecay), r.scaled.epochs])));
        console.log(`\n${RUNS.filter((r) => !r.extra).length} runs of the paper's table 5; * = from-scratch baseline the paper's figures compare against. All: Adam, batch 128, no augmentation.`);
        return;
      }
      if (!names.length && !o.suite) throw new UsageError(`name experiments (see \`r2r experiment --list\`) or give --suite ${[...SUITES, 'all', 'gpt-growth'].join('|')} (several: comma-separated)`);
      if (o.suite?.includes('gpt-growth')) {
        if (names.length || o.suite.length > 1) throw new UsageError('run --suite gpt-growth on its own (it trains on text, the other suites on CIFAR-10)');
        const methods = (o.growthMethods ?? [...GPT_GROWTH_METHODS]) as GptGrowthMethod[];
        for (const m of methods) if (!GPT_GROWTH_METHODS.includes(m)) throw new UsageError(`--growth-methods: unknown method '${m}'; choose from ${GPT_GROWTH_METHODS.join(', ')}`);
        if (o.preset === 'standard') throw new UsageError('gpt-growth has the presets quick and paper (the standard preset is the CIFAR-10 suites\' 30-epoch scale)');
        const seeds = o.seeds === undefined ? undefined : typeof o.seeds === 'number' ? Array.from({ length: o.seeds }, (_, i) => o.seed + i) : o.seeds;
        const preset = { ...GPT_GROWTH_PRESETS[o.preset], ...(seeds ? { seeds } : {}) };
        if (o.epochs !== undefined) throw new UsageError('--epochs does not apply to gpt-growth (step-based; the preset sets the steps)');
        const runs = gptGrowthRuns(preset, methods, o.growthOptions);
        // Parse every spec now, so a bad option fails before any training.
        for (const r of runs) for (const t of r.transforms) parseTransformSpec(t);
        const data = readTextDataset(o.dataText ?? 'tinyshakespeare', preset.block);
        const engine = await getEngine(o.engine, engineOptions(o));
        const log = cliHooks(o.quiet).log ?? (() => {});
        log(`gpt-growth (${preset.name}): ${runs.length} runs on ${engine.description}: ${preset.description}`);
        const summary = await runGptGrowth({ out: o.out, preset, data, engine, methods, growthOptions: o.growthOptions, resume: o.resume, resetOptimizer: o.resetOptimizer, hooks: cliHooks(o.quiet) });
        if (o.json) printJson(summary);
        else console.log(gptGrowthText(summary) + `(also in ${o.out}/gpt-growth/summary.md; chart ${o.out}/gpt-growth/flops-to-scratch-loss.svg; HTML report ${o.out}/gpt-growth/report.html)`);
        return;
      }
      const defs: RunDef[] = [];
      for (const d of [...(o.suite ?? []).flatMap(suiteRuns), ...names.map(findRun)]) if (!defs.includes(d)) defs.push(d);
      const opts = {
        // Resolved here so that `auto` says which engine it chose before the first run starts.
        out: o.out, preset: o.preset, engine: o.engine === 'auto' ? (await openEngine('auto', engineOptions(o), { quiet: o.quiet })).name as EngineName : o.engine, engineOptions: engineOptions(o), seed: o.seed, resume: o.resume, overwrite: o.overwrite, resetOptimizer: o.resetOptimizer,
        epochs: o.epochs, keepCheckpoints: o.keep, retrainTeachers: o.retrainTeachers, hooks: cliHooks(o.quiet),
        data: { dataset: (o.dataset ?? 'cifar10') as DatasetName, dir: o.data, trainLimit: o.limit, valLimit: o.valLimit },
      };
      let res: { outcomes: RunOutcome[] };
      if (o.seeds) {
        const seeds = typeof o.seeds === 'number' ? Array.from({ length: o.seeds }, (_, i) => o.seed + i) : o.seeds;
        const r = await runExperimentSeeds(defs, seeds, opts);
        res = r;
        if (o.json) printJson(r);
        else for (const s of r.summaries) console.log(seededText(s) + `(also in ${o.out}/summary-${s.suite}.md)\n`);
      } else {
        const r = await runExperiments(defs, opts);
        res = r;
        if (o.json) printJson(r);
        else for (const s of r.summaries) console.log(summaryText(s) + `(also in ${o.out}/${s.suite}/summary.md)\n`);
      }
      const failed = res.outcomes.filter((x) => x.status === 'failed');
      if (failed.length) {
        process.stderr.write(`r2r: error: ${failed.length} of ${res.outcomes.length} runs failed: ${failed.map((f) => f.name).join(', ')} (see their run.json)\n`);
        process.exitCode = 1;
      }
    });
}

/** `--seeds 3` (a count) or `--seeds 0,4,7` (a list of distinct non-negative integers). */
function parseSeeds(v: string): number | number[] {
  const parts = v.split(',').map((x) => x.trim());
  const bad = parts.find((x) => !/^\d+$/.test(x));
  if (bad !== undefined) throw new UsageError(`--seeds: '${v}' is neither a count nor a comma-separated list of non-negative integers ('${bad}')`);
  const nums = parts.map(Number);
  if (parts.length === 1) {
    if (nums[0]! < 1) throw new UsageError(`--seeds: a count must be at least 1, got ${v}`);
    return nums[0]!;
  }
  if (new Set(nums).size !== nums.length) throw new UsageError(`--seeds: '${v}' repeats a seed`);
  return nums;
}

function startText(r: RunDef): string {
  return 'teacher' in r.start ? r.start.teacher : `${r.start.model.zoo}(${r.start.model.width})`;
}
