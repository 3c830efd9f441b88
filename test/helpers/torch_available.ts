/**
 * Whether the native torch addon loads, for test files that need it. Without it a file's torch
 * tests are skipped with a loud warning on a developer's machine, and fail under CI=true, where
 * the addon is required: nothing skips silently in CI.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { loadAddon } from '../../src/engines/torch/native.ts';

let unavailable: string | undefined;
try {
  loadAddon();
} catch (e) {
  unavailable = e instanceof Error ? e.message : String(e);
}

/** The reason the addon is missing, or undefined when it loads. */
export const torchUnavailable = unavailable;

/** Call once per test file: registers the failing CI test or prints the warning; returns the `skip` option for its suites. */
export function requireTorch(what: string): string | false {
  const inCI = process.env.CI === 'true' || process.env.CI === '1';
  if (unavailable && inCI) it(`the native torch engine is built (required in CI for ${what})`, () => assert.fail(unavailable));
  else if (unavailable) console.warn(`\n!!! SKIPPING ${what}: ${unavailable}\n`);
  return unavailable ? `native addon not built: ${unavailable}` : false;
}
