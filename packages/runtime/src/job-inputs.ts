import type { SerializedNode } from "@vp/contracts";
import { getNodes, toSerializedNode, type Queryable } from "@vp/db";
import { WorkInputError } from "./work";

/** The node's upstream nodes per input slot, in the order its `inputs` lists them; a missing one is a WorkInputError. */
export async function loadInputs(db: Queryable, node: SerializedNode): Promise<Record<string, SerializedNode[]>> {
  const ids = Object.values(node.inputs).flat();
  const rows = ids.length ? await getNodes(db, node.pipeline_id, [...new Set(ids)]) : [];
  const byId = new Map(rows.map((row) => [row.id, toSerializedNode(row)]));
  const inputs: Record<string, SerializedNode[]> = {};
  for (const [slot, slotIds] of Object.entries(node.inputs)) {
    inputs[slot] = slotIds.map((id) => {
      const upstream = byId.get(id);
      if (!upstream) throw new WorkInputError(`input "${slot}" refers to node "${id}", which no longer exists`);
      return upstream;
    });
  }
  return inputs;
}
