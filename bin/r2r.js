#!/usr/bin/env node
// The r2r command. An installed package runs the built JavaScript in dist/. A source checkout
// (src/ present, tsx installed as a devDependency) runs the TypeScript sources through tsx, so
// a stale dist/ can never shadow the code being edited.
import { existsSync } from 'node:fs';

const src = new URL('../src/cli/main.ts', import.meta.url);
let tsx;
if (existsSync(src)) {
  try { tsx = await import('tsx/esm/api'); } catch { tsx = undefined; }
}
if (tsx) {
  tsx.register();
  await import(src.href);
} else {
  await import('../dist/cli/main.js');
}
