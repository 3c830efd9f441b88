/** The transformer conformance suite on the TensorFlow.js engine (wasm and cpu backends). */
import { createTfjsEngine } from '../../src/engines/tfjs/index.ts';
import { describeTransformerConformance } from './transformer_conformance.ts';

describeTransformerConformance('tfjs (wasm)', () => createTfjsEngine({ backend: 'wasm' }));
describeTransformerConformance('tfjs (cpu)', () => createTfjsEngine({ backend: 'cpu' }));
