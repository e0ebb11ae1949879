import { describe, expect, test } from "vitest";
import { SchemaDriftError } from "../../../../connectors/postgres-standby/drift-error.js";
import { TableMappings } from "../../../../connectors/postgres-standby/planning/table-mapping.js";
import { table } from "../fixtures.js";

type Relation = ReturnType<typeof orders>;

function dropColumn(relation: Relation, name: string): void {
  const kept = [...relation.target.columnsByName].filter(([column]) => column !== name);
  relation.target = { ...relation.target, columnsByName: new Map(kept) };
}

const orders = () =>
  table(
    1,
    "shop",
    "orders",
    [
      { name: "id", type: "integer", identityAlways: true },
      { name: "qty", type: "integer" },
      { name: "total", type: "numeric", generated: true },
    ],
    ["id"],
  );

describe("mapping a source relation onto a standby table", () => {
  test("writes every column the standby does not generate; identity ALWAYS needs OVERRIDING", () => {
    const { source, target } = orders();
    expect(new TableMappings().of(source, target)).toMatchObject({
      qualified: '"shop"."orders"',
      written: [0, 1],
      overriding: true,
      keyNames: ["id"],
      matchColumns: [0],
    });
  });

  test("is built once per pair of definitions, again for a new definition on either side", () => {
    const { source, target } = orders();
    const mappings = new TableMappings();
    const mapping = mappings.of(source, target);
    expect(mappings.of(source, target)).toBe(mapping);
    expect(mappings.of({ ...source }, target)).not.toBe(mapping);
    expect(mappings.of(source, { ...target })).not.toBe(mapping);
    expect(new TableMappings().of(source, target)).not.toBe(mapping);
  });
});

describe("schema drift", () => {
  const drift = (problem: RegExp, mutate: (relation: Relation) => void) => {
    const relation = orders();
    mutate(relation);
    const map = () => new TableMappings().of(relation.source, relation.target);
    expect(map).toThrow(SchemaDriftError);
    expect(map).toThrow(problem);
  };

  test("a source column the standby lacks", () => {
    drift(/column "qty".*the standby lacks it/, (relation) => dropColumn(relation, "qty"));
  });

  test("a primary key that differs, or none on the standby", () => {
    drift(/primary key is \(id\), the standby's is \(id, qty\)/, ({ target }) => {
      target.primaryKey = ["id", "qty"];
    });
    drift(/primary key is \(id\), the standby's is \(\)/, ({ target }) => {
      target.primaryKey = null;
    });
  });

  test("a standby that generates every column sent, or every key column", () => {
    const generateAll = ({ target }: Relation) => {
      for (const column of target.columns) column.generated = true;
    };
    drift(/generates every column the source sends/, generateAll);
    drift(/generates every key column/, ({ target }) => {
      const id = target.columnsByName.get("id");
      if (id) id.generated = true;
    });
  });

  test("a failed mapping is not cached: it fails again", () => {
    const relation = orders();
    dropColumn(relation, "qty");
    const mappings = new TableMappings();
    expect(() => mappings.of(relation.source, relation.target)).toThrow(SchemaDriftError);
    expect(() => mappings.of(relation.source, relation.target)).toThrow(SchemaDriftError);
  });
});
