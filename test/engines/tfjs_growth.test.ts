/** Transformer growth (issue 10) on the TensorFlow.js engine (wasm, the default backend). */
import { createTfjsEngine } from '../../src/engines/tfjs/index.ts';
import { describeTransformerGrowth } from './transformer_growth.ts';

describeTransformerGrowth('tfjs (wasm)', () => createTfjsEngine({ backend: 'wasm', threads: 1 }));
