/** A multilayer perceptron over flattened images: flatten, [dense, activation] per hidden layer, dense. */
import { GraphBuilder } from '../ir/builder.ts';
import type { ActivationFn, Graph } from '../ir/types.ts';

export interface MlpOptions { hidden?: number[]; classes?: number; inputShape?: number[]; activation?: ActivationFn }

export function mlp(opts: MlpOptions = {}): Graph {
  const { hidden = [256, 128], classes = 10, inputShape = [32, 32, 3], activation = 'relu' } = opts;
  const b = new GraphBuilder(`mlp(${hidden.join('-')})`);
  let x = b.input(inputShape);
  if (inputShape.length !== 1) x = b.flatten(x, 'flatten');
  hidden.forEach((units, i) => {
    x = b.dense(x, units, { name: `fc${i + 1}` });
    x = b.activation(x, activation, `act${i + 1}`);
  });
  x = b.dense(x, classes, { name: `fc${hidden.length + 1}` });
  return b.build(x);
}
