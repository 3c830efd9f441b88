/** The graph's JSON form: parse (with errors naming the file and field) and serialise. */
import { z } from 'zod';
import { InvalidGraphError } from '../errors.ts';
import { analyzeGraph } from './graph.ts';
import type { Graph } from './types.ts';

const GraphShape = z.object({
  format: z.literal('r2r-graph'),
  version: z.literal(1),
  name: z.string().optional(),
  nodes: z.array(z.looseObject({ name: z.string().min(1), kind: z.string(), inputs: z.array(z.string()) })).min(1),
  output: z.string().min(1),
});

/** Parses and validates a graph (structure, attributes, shapes). `where` names the source in errors. */
export function parseGraph(text: string | unknown, where = 'model.json'): Graph {
  let obj: unknown = text;
  if (typeof text === 'string') {
    try { obj = JSON.parse(text); } catch (e) { throw new InvalidGraphError(`${where}: not valid JSON (${(e as Error).message})`); }
  }
  const r = GraphShape.safeParse(obj);
  if (!r.success) throw new InvalidGraphError(`${where}: not an r2r graph:\n${z.prettifyError(r.error)}`);
  const graph = r.data as unknown as Graph;
  try {
    analyzeGraph(graph);
  } catch (e) {
    if (e instanceof Error) e.message = `${where}: ${e.message}`;
    throw e;
  }
  return graph;
}

export function serializeGraph(graph: Graph): string {
  return JSON.stringify(graph, null, 2) + '\n';
}
