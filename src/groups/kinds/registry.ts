/** The handler of every node kind, in one Map. An unknown kind is an error, never a default. */
import { UnsupportedLayerError } from '../../errors.ts';
import type { Node, NodeKind } from '../../ir/types.ts';
import { activationHandler, avgPoolHandler, batchNormHandler, dropoutHandler, globalAvgPoolHandler, maxPoolHandler } from './channelwise.ts';
import type { KindHandler } from './handler.ts';
import { conv2dHandler, denseHandler } from './producers.ts';
import { addHandler, concatHandler, flattenHandler, inputHandler } from './structural.ts';
import { attentionHandler, embeddingHandler, layerNormHandler, positionEmbeddingHandler, tokenInputHandler } from './transformer.ts';

export const KIND_HANDLERS: ReadonlyMap<NodeKind, KindHandler> = new Map(
  [
    inputHandler, conv2dHandler, denseHandler, batchNormHandler, activationHandler, maxPoolHandler,
    avgPoolHandler, globalAvgPoolHandler, flattenHandler, addHandler, concatHandler, dropoutHandler,
    tokenInputHandler, embeddingHandler, positionEmbeddingHandler, layerNormHandler, attentionHandler,
  ].map((h) => [h.kind, h]),
);

export function kindHandler(node: Node): KindHandler {
  const h = KIND_HANDLERS.get(node.kind);
  if (!h) throw new UnsupportedLayerError(`channel groups: node '${node.name}' has kind ${JSON.stringify(node.kind)}, which has no channel handler; supported kinds: ${[...KIND_HANDLERS.keys()].join(', ')}`);
  return h;
}
