#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build`.
import { main } from "../dist/app/cli/main.js";

// Once main() has returned, the command's work is done and its output written. A client library can
// still hold the event loop open (kafkajs retrying a broker that stopped answering, a socket nobody
// closes): a process that lingers then is one its supervisor never restarts. The grace lets the
// output drain; a process whose loop empties sooner exits sooner.
const EXIT_GRACE_MS = 2000;

function exitWith(code) {
  process.exitCode = code;
  setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
}

main(process.argv.slice(2)).then(exitWith, (err) => {
  console.error(err instanceof Error ? err.message : String(err));
  exitWith(1);
});
