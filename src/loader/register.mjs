// `node --import ./src/loader/register.mjs app.ts`: runs TypeScript sources through hooks.mjs.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
process.setSourceMapsEnabled(true);
