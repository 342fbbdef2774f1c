import { WorkInputError, type WorkFunction } from "./work";

/**
 * Node types whose executor is not in this build are still consumed
 * (so their jobs never sit unnoticed in a queue); a job
 * therefore fails the node at once with that reason instead of waiting forever.
 */
export const createUnavailableWork = (): WorkFunction => async (ctx) => {
  const provider = (ctx.node.config as { provider?: string }).provider ?? "default";
  throw new WorkInputError(`${ctx.node.type} (provider: ${provider}) cannot run yet: this build has no executor for it`);
};
