#!/usr/bin/env node
// The r2r command. The package ships TypeScript; tsx loads it without a build step.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/main.ts');
