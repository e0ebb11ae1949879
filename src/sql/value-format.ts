import type pg from "pg";

/**
 * The session settings that change how PostgreSQL prints values as text (and,
 * for DateStyle and IntervalStyle, how it reads them back). Every session that
 * moves or compares values as text pins them, so what reaches a standby never
 * depends on a server's, database's or role's defaults: a source with
 * `ALTER DATABASE … SET DateStyle = 'SQL, DMY'` would otherwise print
 * 02/01/2024 where a standby with the default MDY reads February 1st.
 *
 * Values are written without spaces: they travel in the startup packet's
 * `options`, where a space would end the argument.
 */
export const VALUE_FORMAT_SETTINGS: readonly (readonly [name: string, value: string])[] = [
  ["TimeZone", "UTC"],
  ["DateStyle", "ISO,YMD"],
  ["IntervalStyle", "postgres"],
  ["extra_float_digits", "1"],
  ["bytea_output", "hex"],
];

/**
 * The connection with the settings above in its startup packet. Client-supplied
 * startup options take precedence over ALTER DATABASE / ALTER ROLE settings and
 * stay the session's value across transactions and RESET, and they also work on
 * a walsender, where SET is not available.
 */
export function withValueFormat(config: pg.ClientConfig): pg.ClientConfig {
  const pinned = VALUE_FORMAT_SETTINGS.map(([name, value]) => `-c ${name}=${value}`).join(" ");
  return { ...config, options: [config.options, pinned].filter(Boolean).join(" ") };
}
