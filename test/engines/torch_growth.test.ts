/**
 * Transformer growth (issue 10) on the native torch engine. Without the addon this file skips
 * with a loud message locally; with CI=true it fails (as the other torch tests).
 */
import { createTorchEngine } from '../../src/engines/torch/index.ts';
import { requireTorch } from '../helpers/torch_available.ts';
import { describeTransformerGrowth } from './transformer_growth.ts';

if (!requireTorch('the native torch transformer-growth tests')) describeTransformerGrowth('torch (cpu)', () => createTorchEngine({ threads: 1 }));
