/**
 * Transformer growth (issue 10) on the native torch engine. Without the addon this file skips
 * with a loud message locally; with CI=true it fails (as the other torch tests).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createTorchEngine } from '../../src/engines/torch/index.ts';
import { loadAddon } from '../../src/engines/torch/native.ts';
import { describeTransformerGrowth } from './transformer_growth.ts';

let unavailable: string | undefined;
try { loadAddon(); } catch (e) { unavailable = e instanceof Error ? e.message : String(e); }
const inCI = process.env.CI === 'true' || process.env.CI === '1';

if (unavailable && inCI) it('the native torch engine is built (required in CI)', () => { assert.fail(unavailable); });
else if (unavailable) console.warn(`\n!!! SKIPPING the native torch transformer-growth tests: ${unavailable}\n`);
else describeTransformerGrowth('torch (cpu)', () => createTorchEngine({ threads: 1 }));
