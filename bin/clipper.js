#!/usr/bin/env node
// The `clipper` command: loads the TypeScript CLI in this process through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
