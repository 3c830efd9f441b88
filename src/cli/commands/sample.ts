/** `r2r sample`: generate text from a trained token model (gpt) checkpoint. */
import { Command, Option } from '@commander-js/extra-typings';
import { getEngine } from '../../engines/registry.ts';
import { CheckpointError } from '../../errors.ts';
import { loadCheckpoint } from '../../io/checkpoint.ts';
import { sampleText } from '../../train/sample.ts';
import { engineOption, parseInteger, parseNumber, printJson } from './common.ts';
import { engineOptions, threadsOption, tfjsBackendOption, deviceOption } from './train.ts';

export function register(program: Command): void {
  program
    .command('sample')
    .description('Generate text with a trained token model: CKPT is a checkpoint directory of a text run (e.g. runs/train/NAME/final); its vocabulary travels with it, so no data file is needed.')
    .argument('<ckpt>', 'checkpoint directory')
    .addOption(new Option('--prompt <text>', 'text to continue (every character must be in the model\'s vocabulary)').default('\n'))
    .addOption(new Option('--tokens <n>', 'characters to generate').argParser(parseInteger('--tokens')).default(500))
    .addOption(new Option('--temperature <t>', 'softmax temperature; 0 picks the most likely character').argParser(parseNumber('--temperature')).default(1))
    .addOption(new Option('--seed <n>', 'sampling seed').argParser(parseInteger('--seed')).default(0))
    .addOption(engineOption()).addOption(tfjsBackendOption()).addOption(deviceOption()).addOption(threadsOption())
    .option('--json', 'print {prompt, generated, text} as JSON')
    .action(async (ckpt, o) => {
      const ck = loadCheckpoint(ckpt);
      if (!ck.vocab) throw new CheckpointError(`${ckpt}: no vocabulary (vocab.json); sample needs a checkpoint written by a text run (r2r train --model gpt)`);
      const engine = await getEngine(o.engine, engineOptions(o));
      const r = await sampleText(engine, ck.graph, ck.weights, ck.vocab, { prompt: o.prompt, tokens: o.tokens, temperature: o.temperature, seed: o.seed });
      if (o.json) { printJson({ prompt: o.prompt, generated: r.generated, text: r.text }); return; }
      process.stdout.write(r.text + (r.text.endsWith('\n') ? '' : '\n'));
    });
}
