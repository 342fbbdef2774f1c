import type { MediaType } from "./node-types";

/** One named input slot of a node type: how many upstream nodes it takes and what they must produce. */
export interface InputSlot {
  readonly min: number;
  readonly max: number;
  readonly accepts: readonly MediaType[];
  readonly description: string;
}
