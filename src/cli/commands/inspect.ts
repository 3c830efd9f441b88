/** `r2r inspect`: per-layer output shapes, parameters and multiply-adds, and the channel groups. */
import { Command, Option } from '@commander-js/extra-typings';
import { UsageError } from '../../errors.ts';
import { formatOfInput } from '../../io/formats.ts';
import { analyzeChannelGroups } from '../../groups/analyze.ts';
import { analyzeGraph, countMacs, countParams } from '../../ir/graph.ts';
import { sizeOf } from '../../ir/shapes.ts';
import { blockOption, dimOption, headsOption, layersOption, vocabOption } from './common.ts';
import { checkpointOption, formatTable, jsonOption, loadGraph, modelOption, printJson, seedOption, widthOption } from './common.ts';

export function register(program: Command): void {
  program
    .command('inspect')
    .argument('[file]', 'a model file: r2r checkpoint directory, TensorFlow.js model.json, or another registered format (e.g. .onnx)')
    .description('Show a network (a model file, --model or --checkpoint): nodes with output shapes, parameters and forward multiply-adds per layer and in total, and its channel groups (producers, consumers, channel-wise ops).')
    .addOption(modelOption())
    .addOption(widthOption())
    .addOption(layersOption()).addOption(headsOption()).addOption(dimOption()).addOption(blockOption()).addOption(vocabOption())
    .addOption(checkpointOption())
    .addOption(seedOption())
    .addOption(jsonOption('{name, params, macs, nodes, groups}'))
    .addOption(new Option('--from <format>', 'format of FILE (default: from its content or name)'))
    .action(async (file, o) => {
      const { graph, source } = file ? await loadModelFile(file, o) : loadGraph(o);
      const info = analyzeGraph(graph);
      const nodes = [...info.nodes.values()].map((ni) => ({
        name: ni.node.name,
        kind: ni.node.kind === 'activation' ? `activation(${ni.node.fn})` : ni.node.kind,
        inputs: ni.node.inputs,
        outputShape: ni.outputShape,
        params: ni.params.filter((p) => p.trainable).reduce((a, p) => a + sizeOf(p.shape), 0),
        macs: ni.macs,
      }));
      const groups = analyzeChannelGroups(graph).map((g) => ({
        id: g.id, label: g.label, size: g.size, widenable: g.widenable, containsInput: g.containsInput, feedsOutput: g.feedsOutput, coupled: g.coupled,
        producers: g.producers, consumers: g.consumers.map((c) => c.node), channelOps: g.channelOps.map((c) => c.node), adds: g.adds, volumes: g.volumes,
      }));
      const params = countParams(graph, info), macs = countMacs(graph, info);
      if (o.json) {
        printJson({ name: source, params, macs, nodes, groups });
        return;
      }
      console.log(`${source}: ${params.toLocaleString('en-US')} parameters, ${macs.toLocaleString('en-US')} multiply-adds per example (conv2d, dense, attention incl. its T x T terms)\n`);
      console.log(formatTable(['node', 'kind', 'inputs', 'output', 'params', 'MACs'],
        nodes.map((n) => [n.name, n.kind, n.inputs.join(', '), `[${n.outputShape.join(', ')}]`, n.params, n.macs])));
      console.log('\nchannel groups:');
      for (const g of groups) {
        const why = g.widenable ? 'widenable' : g.containsInput ? 'holds the input: not widenable' : g.feedsOutput ? 'feeds the logits: not widenable' : g.coupled.length ? `coupled by ${g.coupled[0].node}: not widenable channel-wise` : 'derived (concat/flatten): widened through its sources';
        console.log(`  g${g.id} (${g.size} channels, ${why}): ${g.label}`);
        console.log(`      producers: ${g.producers.join(', ') || '-'}; consumers: ${g.consumers.join(', ') || '-'}; channel-wise: ${g.channelOps.join(', ') || '-'}${g.adds.length ? `; adds: ${g.adds.join(', ')}` : ''}`);
      }
    });
}

/** A model file of any registered format (the positional FILE). */
async function loadModelFile(file: string, o: { from?: string; model?: string; checkpoint?: string }) {
  if (o.model || o.checkpoint) throw new UsageError('give a FILE, --model or --checkpoint, not more than one');
  const fmt = formatOfInput(file, o.from);
  const m = await fmt.read(file);
  return { graph: m.graph, weights: m.weights, source: `${file} (${fmt.name})` };
}
