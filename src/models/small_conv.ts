/** SmallConv, the paper's visualisation network: conv 7x7 (16 filters), 2x2 max pool, dense 150, dense 10. */
import { GraphBuilder } from '../ir/builder.ts';
import type { Graph } from '../ir/types.ts';

export interface SmallConvOptions { filters?: number; hidden?: number; classes?: number; inputShape?: [number, number, number] }

export function smallConv(opts: SmallConvOptions = {}): Graph {
  const { filters = 16, hidden = 150, classes = 10, inputShape = [32, 32, 3] } = opts;
  const b = new GraphBuilder(`small-conv(${filters})`);
  let x = b.input(inputShape);
  x = b.conv2d(x, filters, 7, { padding: 3, name: 'conv1' });
  x = b.relu(x, 'relu1');
  x = b.maxPool(x, 2, { stride: 2, name: 'pool1' });
  x = b.flatten(x, 'flatten');
  x = b.dense(x, hidden, { name: 'fc1' });
  x = b.relu(x, 'relu2');
  x = b.dense(x, classes, { name: 'fc2' });
  return b.build(x);
}
