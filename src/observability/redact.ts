/**
 * Connection strings carry passwords. Everything that leaves the process as
 * text (logs, errors, metrics labels, status output) passes through here.
 */
// The password runs to the LAST "@" before the path: pg (WHATWG URL parsing) accepts a raw "@" in it
// (postgres://u:p@ss@host/db has the password "p@ss"), and stopping at the first "@" printed the rest.
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]*:)([^\s/]*)(@)/gi;
const KEYWORD_PASSWORD = /(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]+)/gi;
/** A secret as a JSON member ("password":"...", "saslPassword":"..."), e.g. a configuration echoed whole. */
const JSON_SECRET = /("[a-z_]*(?:password|secret|token)"\s*:\s*)"(?:[^"\\]|\\.)*"/gi;

export function redact(text: string): string {
  return text
    .replace(URL_PASSWORD, "$1****$3")
    .replace(KEYWORD_PASSWORD, "$1****")
    .replace(JSON_SECRET, '$1"****"');
}

export function redactError(err: unknown): string {
  if (err instanceof Error) return redact(err.message);
  return redact(String(err));
}
