/**
 * The node-type catalog is the one definition of a node type: this test derives what the rest of the product
 * says about node types (executor handlers and subscriptions, NATS permissions, KEDA triggers, the editor's
 * palette, glyphs and config forms, the cache's work versions, the job concurrency defaults, the database's type
 * check) and fails where one disagrees with the catalog.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { busPermissions, servedTypes } from "@vp/bus";
import {
  CONFIG_SCHEMAS,
  createTopology,
  EXECUTOR_OF,
  EXECUTORS,
  INPUT_SCHEMAS,
  NODE_CATALOG,
  NODE_ICONS,
  NODE_TYPES,
  NodeType,
  nodeTypesOf,
  outputMediaType,
} from "@vp/contracts";
import { WORK_VERSIONS } from "@vp/flow-graph/cache-key";
import { JOB_CONCURRENCY_DEFAULTS } from "@vp/runtime";
import { configFields } from "../../web/lib/schema-form";
import { NODE_TYPE_INFO, PALETTE } from "../../web/lib/node-types";

const root = join(import.meta.dirname, "../..");
const read = (path: string) => readFileSync(join(root, path), "utf8");

describe("the node-type catalog", () => {
  it("defines every type completely", () => {
    expect(NODE_TYPES.length).toBeGreaterThan(0);
    expect(NodeType.options).toEqual(NODE_TYPES);
    for (const type of NODE_TYPES) {
      const d = NODE_CATALOG[type];
      expect(type, "type names are kebab-case (the database's shape check, subjects, env names)").toMatch(/^[a-z][a-z0-9-]{0,63}$/);
      expect(EXECUTORS, type).toContain(d.executor);
      expect(d.label.length, type).toBeGreaterThan(0);
      expect(d.description.length, type).toBeGreaterThan(0);
      expect(NODE_ICONS, type).toContain(d.icon);
      expect(d.color, type).toMatch(/^#[0-9a-f]{6}$/);
      expect(Number.isInteger(d.workVersion) && d.workVersion >= 1, type).toBe(true);
      for (const [slot, spec] of Object.entries(d.inputs)) {
        expect(spec.min <= spec.max && spec.accepts.length > 0, `${type}.${slot}`).toBe(true);
      }
    }
  });

  it("is what contracts, the cache and the job settings derive from", () => {
    for (const type of NODE_TYPES) {
      const d = NODE_CATALOG[type];
      expect(CONFIG_SCHEMAS[type], type).toBe(d.config);
      expect(INPUT_SCHEMAS[type], type).toBe(d.inputs);
      expect(EXECUTOR_OF[type], type).toBe(d.executor);
      expect(WORK_VERSIONS[type], type).toBe(d.workVersion);
      expect(JOB_CONCURRENCY_DEFAULTS[type], type).toBe("concurrency" in d ? d.concurrency : undefined);
      if (d.output !== "asset") expect(outputMediaType(type), type).toBe(d.output);
      else expect(outputMediaType(type, { type: "image" }), type).toBe("image");
    }
  });

  it("each executor has a handler file for every type it serves, registered in its main.ts, and no other", () => {
    for (const executor of EXECUTORS) {
      const types = nodeTypesOf(executor);
      const handlers = join(root, "services", executor, "src/handlers");
      const main = read(`services/${executor}/src/main.ts`);
      for (const type of types) {
        expect(existsSync(join(handlers, `${type}.ts`)), `services/${executor}/src/handlers/${type}.ts`).toBe(true);
        expect(main, `${executor}'s main.ts registers no work for ${type}`).toMatch(new RegExp(`["']?${type}["']?\\s*:`));
      }
      // A handler for a type the catalog gives to the other executor (or to nobody) is a mistake.
      const strays = readdirSync(handlers)
        .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
        .map((f) => f.slice(0, -3))
        .filter((name) => (NODE_TYPES as readonly string[]).includes(name) && !types.includes(name as NodeType));
      expect(strays, executor).toEqual([]);
    }
  });

  it("the executors' NATS users may consume exactly their catalog types' job consumers", () => {
    const topology = createTopology();
    for (const executor of EXECUTORS) {
      expect(servedTypes(executor)).toEqual(nodeTypesOf(executor));
      const allowed = busPermissions(executor, topology).publish.allow;
      for (const type of NODE_TYPES) {
        const next = `$JS.API.CONSUMER.MSG.NEXT.${topology.streams.jobs.name}.${topology.consumers.job(type).durable}`;
        expect(allowed.includes(next), `${executor} ${type}`).toBe(EXECUTOR_OF[type] === executor);
      }
    }
    // deploy/k8s carries the generated users: stale means a type was added without regenerating.
    for (const type of NODE_TYPES) expect(read("deploy/k8s/base/platform/nats/auth.conf"), type).toContain(`VP_JOBS.executor-${type}"`);
  });

  it("KEDA scales each executor on its own catalog types' consumers", () => {
    const docs = parseAllDocuments(read("deploy/k8s/base/app/autoscaling.yaml")).map((d) => d.toJS() as Record<string, any>);
    const scaled = docs.filter((d) => d?.kind === "ScaledObject");
    for (const executor of EXECUTORS) {
      const so = scaled.find((d) => d.spec.scaleTargetRef.name === executor);
      expect(so, executor).toBeDefined();
      const consumers = (so!.spec.triggers as Array<{ metadata: { consumer: string } }>).map((t) => t.metadata.consumer).sort();
      expect(consumers, executor).toEqual(
        nodeTypesOf(executor)
          .map((t) => createTopology().consumers.job(t).durable)
          .sort(),
      );
    }
  });

  it("the editor's palette, glyphs and config forms come from it", () => {
    expect(PALETTE.map((p) => p.type)).toEqual(NODE_TYPES);
    const icons = read("web/components/icons.tsx");
    for (const icon of NODE_ICONS) expect(icons, `web/components/icons.tsx has no glyph "${icon}"`).toMatch(new RegExp(`\\n  "?${icon}"?: \\(`));
    for (const type of NODE_TYPES) {
      const d = NODE_CATALOG[type];
      expect(NODE_TYPE_INFO[type], type).toEqual({ type, label: d.label, description: d.description, icon: d.icon, color: d.color, tint: d.tint });
      const keys = Object.keys((d.config as unknown as { shape: Record<string, unknown> }).shape);
      expect(
        configFields(type).map((f) => f.key),
        type,
      ).toEqual(keys);
    }
  });
});
