import kafkajs from "kafkajs";
import { describe, expect, it } from "vitest";
import { aclNeeds, missingAcls } from "../../../operations/doctor/kafka-checks.js";

const {
  AclOperationTypes: Op,
  AclPermissionTypes: Perm,
  AclResourceTypes: Res,
  ResourcePatternTypes: Pat,
} = kafkajs;
const topics = { data: "diffrelay.app", schemas: "diffrelay.app.schemas" };
const acl = (operation: number, permissionType: number = Perm.ALLOW) => ({
  principal: "User:apply",
  host: "*",
  operation,
  permissionType,
});

describe("ACL needs", () => {
  const applier = aclNeeds(topics, false, ["s1"]);

  it("a prefixed Read on the topics and Read on the group cover an applier (Read implies Describe)", () => {
    const resources = [
      {
        resourceType: Res.TOPIC,
        resourceName: "diffrelay.",
        resourcePatternType: Pat.PREFIXED,
        acls: [acl(Op.READ)],
      },
      {
        resourceType: Res.GROUP,
        resourceName: "diffrelay-apply-s1.diffrelay.app",
        resourcePatternType: Pat.LITERAL,
        acls: [acl(Op.READ)],
      },
    ];
    expect(missingAcls(applier, resources)).toEqual([]);
  });

  it("names what is missing, and a DENY wins over an ALLOW", () => {
    const resources = [
      { resourceType: Res.TOPIC, resourceName: "*", resourcePatternType: Pat.LITERAL, acls: [acl(Op.ALL)] },
      {
        resourceType: Res.TOPIC,
        resourceName: topics.schemas,
        resourcePatternType: Pat.LITERAL,
        acls: [acl(Op.READ, Perm.DENY)],
      },
    ];
    expect(missingAcls(applier, resources).map((m) => m.label)).toEqual([
      "Read on topic diffrelay.app.schemas",
      "Read on group diffrelay-apply-s1.diffrelay.app",
    ]);
  });
});
