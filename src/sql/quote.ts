/**
 * Identifier quoting for statements built from catalog and source names.
 * Every name is quoted, even a plain lower-case one: a name that happens to be
 * a keyword, or that differs only in case, must never change meaning.
 */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new Error("an SQL identifier cannot be empty");
  // PostgreSQL cannot store NUL in a name; one here means the input is corrupt.
  if (name.includes("\u0000"))
    throw new Error(`an SQL identifier cannot contain NUL: ${JSON.stringify(name)}`);
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteQualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/** A string literal for statements that cannot take a parameter (replication commands, DDL, DO blocks). */
export function quoteLiteral(value: string): string {
  if (value.includes("\u0000"))
    throw new Error(`an SQL literal cannot contain NUL: ${JSON.stringify(value)}`);
  return `'${value.replaceAll("'", "''")}'`;
}
