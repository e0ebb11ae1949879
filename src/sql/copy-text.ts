import type { ColumnValue } from "../change/change-model.js";

/**
 * COPY's text format (FORMAT text, the default delimiter and NULL): each value
 * is the type's own text representation, as an INSERT of `$n::text` would pass
 * it to the type's input function; only the characters COPY itself reads are
 * escaped: backslash, the tab delimiter, and line ends.
 */
const SPECIAL = /[\\\t\n\r]/;
const ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };

function copyTextValue(value: ColumnValue): string {
  if (value === null) return "\\N";
  return SPECIAL.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c] as string) : value;
}

/** One row of COPY text data, line end included. */
export function copyTextRow(values: readonly ColumnValue[]): string {
  let line = "";
  for (let i = 0; i < values.length; i++) {
    if (i > 0) line += "\t";
    line += copyTextValue(values[i] as ColumnValue);
  }
  return `${line}\n`;
}
