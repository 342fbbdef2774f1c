/**
 * Writes the NATS users of deploy/k8s (deploy/k8s/base/platform/nats/auth.conf) from @vp/bus busPermissions().
 * Run after a change to the topology or the permissions: `node --import tsx scripts/nats-auth-conf.ts`
 * (tests/deploy/manifests.test.ts fails while the file is stale).
 */
import { writeFileSync } from "node:fs";
import { deployNatsAuthConf } from "@vp/bus";

const path = new URL("../deploy/k8s/base/platform/nats/auth.conf", import.meta.url);
writeFileSync(path, deployNatsAuthConf());
console.log(`wrote ${path.pathname}`);
