/** The conformance suite on the TensorFlow.js engine, wasm backend (the default). */
import { createTfjsEngine } from '../../src/engines/tfjs/index.ts';
import { describeEngineConformance } from './conformance.ts';

describeEngineConformance('tfjs (wasm)', () => createTfjsEngine({ backend: 'wasm' }));
