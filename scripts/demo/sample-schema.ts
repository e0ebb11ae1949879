/** A small shop: keyed tables of several types and a log without a primary key. */
export const SAMPLE_DDL = `
CREATE TABLE accounts (
  id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(14,2) NOT NULL, currency char(3) NOT NULL,
  opened timestamptz NOT NULL, tags text[], profile jsonb, note text, active boolean NOT NULL, version integer NOT NULL
);
CREATE TABLE audit_log (at timestamptz NOT NULL, account bigint, message text);
CREATE TABLE orders (id bigserial PRIMARY KEY, placed date NOT NULL, account bigint, total numeric);
`;

export function sampleRows(accounts: number): string {
  return `
INSERT INTO accounts
SELECT g, 'owner ' || g, (g % 1000) * 1.25, 'EUR', '2026-01-01'::timestamptz + g * interval '1 second',
       ARRAY['tag' || (g % 7), 'vip'], jsonb_build_object('tier', g % 3, 'since', 2020 + g % 6),
       repeat('n', 40), true, 1
  FROM generate_series(1, ${accounts}) g;
INSERT INTO orders (placed, account, total)
  SELECT '2026-01-01'::date + (g % 300), g % ${accounts} + 1, g * 0.5 FROM generate_series(1, ${accounts}) g;
`;
}

/** The pgbench script of the demo's write load: one small UPDATE per transaction, plus a log line now and then. */
export function pgbenchScript(accounts: number): string {
  return `\\set id random(1, ${accounts})
\\set delta random(-500, 500)
BEGIN;
UPDATE accounts SET balance = balance + :delta * 0.01 WHERE id = :id;
INSERT INTO audit_log VALUES (now(), :id, 'balance moved');
END;
`;
}
