#!/usr/bin/env node
import { runDevStack } from './program';

void runDevStack(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
}).then((code) => {
  process.exitCode = code;
});
