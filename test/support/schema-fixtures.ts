/**
 * Source schemas that exercise every shape the capture and apply issues name:
 * every listed type, a table without a primary key, a partitioned table, and
 * identifiers that need quoting. The same DDL runs on the primary and on each
 * standby, as an operator (or `seed --create-schema`) would.
 */
export const TYPE_MATRIX_DDL = `
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (a integer, b text);
CREATE TABLE every_type (
  id bigint PRIMARY KEY,
  i2 smallint, i4 integer, i8 bigint,
  num numeric, num_scaled numeric(12,4), f4 real, f8 double precision,
  ts timestamp, tstz timestamptz, d date, t time, ttz timetz, iv interval,
  b boolean, by bytea, txt text, vc varchar(20), ch char(3), ci citext,
  js json, jsb jsonb, u uuid, inet_v inet, mac macaddr, bits bit varying(16),
  int_arr integer[], txt_arr text[], arr2d integer[][],
  m mood, pi posint, r int4range, tsr tstzrange, p pair, pt point, x xml,
  big_toast text
);
CREATE TABLE no_key (a integer, b text, c json);
CREATE TABLE measurements (id bigint, at date NOT NULL, v numeric, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Mixed Case ""quoted"" .dots" ("Key Col" integer PRIMARY KEY, "value; DROP TABLE x; --" text, "a.b" text);
`;

/** Values that must survive the trip byte for byte, as PostgreSQL's own text. */
export const TYPE_MATRIX_ROWS = `
INSERT INTO every_type VALUES
 (1, -32768, -2147483648, -9223372036854775808,
  '123456789012345678901234567890.123456789012345678901234567890', 'NaN', 'Infinity', '-Infinity',
  '2024-02-29 23:59:59.123456', '2024-06-01 12:00:00.000001+02', '4713-01-01 BC', '24:00:00', '23:59:59.999999-12', '1 year 2 mons 3 days 04:05:06.789',
  true, '\\x00ff10', E'emoji 🎉 and combining é and quote '' and backslash \\\\', 'varchar', 'ab', 'MiXeD',
  '{"a": 1,   "a": 2,  "nested": [1, 2.50, "x"]}', '{"b": [1, 2], "a": {"c": null}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '08:00:2b:01:02:03', B'1011',
  '{1,NULL,3}', '{"with \\"quote\\"","NULL",NULL,"comma, inside","{braces}"}', '{{1,2},{3,4}}',
  'happy', 42, '[1,10)', '[2024-01-01 00:00:00+00,infinity)', '(7,"seven, with comma")', '(1.5,-2.25)', '<a b="c">text</a>',
  repeat('toast-me ', 20000)),
 (2, 0, 0, 9223372036854775807, '-0.000000000000000000001', '0.0000', 'NaN', '1e-300',
  'infinity', '-infinity', '0001-01-01', '00:00:00', '00:00:00+00', '-178956970 years -8 mons -6 days',
  false, '\\x', '', '', '   ', '', 'null', '[]', '00000000-0000-0000-0000-000000000000', '::1', 'ff:ff:ff:ff:ff:ff', B'',
  '{}', '{}', '{{NULL,NULL}}', 'sad', 1, 'empty', '(,)', '(,)', '(0,0)', '<e/>', NULL),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO no_key VALUES (1, 'dup', '{"x": 1}'), (1, 'dup', '{"x": 1}'), (2, NULL, NULL);
INSERT INTO measurements VALUES (1, '2024-03-01', 1.5), (2, '2025-03-01', 2.5);
INSERT INTO "Odd Schema"."Mixed Case ""quoted"" .dots" VALUES (1, 'semi; colon', 'dot.ted');
`;

/**
 * Changes of every kind over the same tables: single and multi-column updates,
 * a key change, TOAST left unchanged and TOAST changed, deletes, a truncate.
 */
export const TYPE_MATRIX_CHANGES = [
  "UPDATE every_type SET num = num + 1 WHERE id = 1",
  "UPDATE every_type SET txt = 'changed', js = '{\"a\":   3}', m = 'ok' WHERE id = 1",
  "UPDATE every_type SET big_toast = big_toast || 'more' WHERE id = 1",
  "UPDATE every_type SET id = 10 WHERE id = 2",
  "UPDATE every_type SET i2 = 7 WHERE id = 3",
  "DELETE FROM every_type WHERE id = 3",
  "UPDATE no_key SET b = 'one' WHERE ctid = (SELECT ctid FROM no_key WHERE a = 1 LIMIT 1)",
  "DELETE FROM no_key WHERE ctid = (SELECT ctid FROM no_key WHERE a = 1 LIMIT 1)",
  "UPDATE measurements SET v = v * 2",
  "UPDATE measurements SET at = '2025-06-01' WHERE id = 1",
  `UPDATE "Odd Schema"."Mixed Case ""quoted"" .dots" SET "a.b" = 'x.y' WHERE "Key Col" = 1`,
  "TRUNCATE measurements",
  "INSERT INTO measurements VALUES (3, '2024-05-05', 3.5)",
];

/** The tables that the fixtures fill, as `schema.table` text for comparisons. */
export const TYPE_MATRIX_TABLES = [
  `public.every_type`,
  `public.no_key`,
  `public.measurements`,
  `"Odd Schema"."Mixed Case ""quoted"" .dots"`,
];
