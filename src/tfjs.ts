/**
 * `r2r/tfjs`: the TensorFlow.js-typed part of r2r's tfjs support. `toLayersModel` turns an IR
 * graph with weights into a `tf.LayersModel` (to predict or `fit` in tfjs directly), and
 * `tfjsFileSystem` is a `tf.io.IOHandler` over Node's file system for `tf.loadLayersModel` and
 * `model.save`, as tfjs-node's `file://` handler (which needs the native tfjs-node) would be.
 *
 * It is a separate entry point because tfjs-layers' own declaration files fail a strict `tsc`
 * with `skipLibCheck: false`; programs that import it need `skipLibCheck: true`. The main entry
 * point (`r2r`) reads and writes tfjs files without exposing tfjs types.
 */
export { toLayersModel, tfjsFileSystem } from './io/tfjs_layers.ts';
export { readTfjs, writeTfjs, tfjsExportProblems, tfjsOutputs } from './io/tfjs.ts';
export type { ImportedModel, TfjsExportOptions } from './io/tfjs.ts';
