#!/usr/bin/env node
// The `fedtune` executable: runs the TypeScript CLI through tsx, so a fresh `npm install` needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/index.ts');
