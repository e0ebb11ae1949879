/**
 * Connection strings carry passwords. Everything that leaves the process as
 * text (logs, errors, metrics labels, status output) passes through here.
 */
// The password runs to the LAST "@" before the path: pg (WHATWG URL parsing) accepts a raw "@" in it
// (postgres://u:p@ss@host/db has the password "p@ss"), and stopping at the first "@" printed the rest.
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]*:)([^\s/]*)(@)/gi;
/** A URL query parameter (pg takes `?password=` and libpq's `sslpassword` there); its value ends at "&" or "#". */
const QUERY_PARAMETER = /([?&])([^=&#\s]+)=([^&#\s]*)/g;
/** libpq's keyword form (`host=db password='a b'`); a query parameter is left to QUERY_PARAMETER. */
const KEYWORD_PASSWORD = /(?<![?&])(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]+)/gi;
/** A secret as a JSON member ("password":"...", "saslPassword":"..."), e.g. a configuration echoed whole. */
const JSON_SECRET = /("[a-z_]*(?:password|secret|token)"\s*:\s*)"(?:[^"\\]|\\.)*"/gi;

export function redact(text: string): string {
  return text
    .replace(URL_PASSWORD, "$1****$3")
    .replace(QUERY_PARAMETER, (parameter, separator: string, name: string) =>
      isPasswordParameter(name) ? `${separator}${name}=****` : parameter,
    )
    .replace(KEYWORD_PASSWORD, "$1****")
    .replace(JSON_SECRET, '$1"****"');
}

/** pg decodes a parameter's name before it looks at it: `%70assword` is `password`. */
function isPasswordParameter(name: string): boolean {
  let decoded = name;
  try {
    decoded = decodeURIComponent(name.replaceAll("+", " "));
  } catch {
    // Not valid percent-encoding: pg would not decode it either.
  }
  return /password$/i.test(decoded.trim());
}

export function redactError(err: unknown): string {
  if (err instanceof Error) return redact(err.message);
  return redact(String(err));
}
