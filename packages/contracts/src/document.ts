import { z } from "zod";
import { AssetInput } from "./config";
import { Id, Title } from "./ids";
import { NodeType } from "./catalog";
import { NodePosition } from "./state";
import { Variables } from "./variables";

/**
 * "Pipeline as code": a pipeline's structure as a versioned JSON document that can live in a repository.
 * Only structure travels (titles, types, inputs, config, inline asset content, canvas positions, disabled), never
 * execution state or storage keys: an imported pipeline starts pending and its media assets are uploaded
 * again. Slots, media types, cycles and config are checked by @vp/flow-graph's validatePipelineDocument.
 */
export const PIPELINE_DOCUMENT_FORMAT = "video-pipelines/pipeline";
export const PIPELINE_DOCUMENT_VERSION = 1;

/** A node's inputs: slot name -> the ids of the nodes feeding it (the same rule on every write path). */
export const NodeInputs = z.record(z.string().regex(/^[a-z][a-zA-Z0-9_-]{0,31}$/, "is not an input slot name"), z.array(Id).max(100));

export const DocumentNode = z.strictObject({
  id: Id,
  title: Title,
  type: NodeType,
  inputs: NodeInputs.optional(),
  config: z.record(z.string(), z.unknown()).optional(),
  /** Asset nodes only: the media type and, for text/json, the inline content. No `source`: strict. */
  asset: AssetInput.optional(),
  position: NodePosition.optional(),
  /** Switched off in the editor (runs skip it); absent means enabled. */
  disabled: z.boolean().optional(),
});
export type DocumentNode = z.infer<typeof DocumentNode>;

export const PipelineDocument = z.strictObject({
  format: z.literal(PIPELINE_DOCUMENT_FORMAT),
  version: z.literal(PIPELINE_DOCUMENT_VERSION),
  title: Title,
  /** The pipeline's variables (absent: none); the nodes' placeholders and bound assets must fit them. */
  variables: Variables.optional(),
  /** As many as the pipeline limits allow (validatePipelineDocument checks the count). */
  nodes: z.array(DocumentNode),
});
export type PipelineDocument = z.infer<typeof PipelineDocument>;
