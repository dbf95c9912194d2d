#!/usr/bin/env node
// The `clipper` command: loads the TypeScript CLI in this process (src/loader/hooks.mjs).
import { register } from 'node:module';

register('../src/loader/hooks.mjs', import.meta.url);
process.setSourceMapsEnabled(true);
await import('../src/cli/main.ts');
