"use client";

import { useCallback, useState } from "react";
import { errorMessage } from "@/lib/api";
import { guessMime, mediaOfFile } from "@/lib/node-types";
import type { UpdateNode, WriteDeps } from "./use-node-writes";

/** An asset node's file upload; `uploads` is the progress (0..1) of each node whose file is being sent. */
export function useUpload({ api, pipelineId, dispatch, toast, latest, updateNode }: WriteDeps & { updateNode: UpdateNode }) {
  const [uploads, setUploads] = useState<ReadonlyMap<string, number>>(new Map());
  const upload = useCallback(
    async (id: string, file: File) => {
      const node = latest.current.nodes.get(id);
      if (!node) return;
      const media = mediaOfFile(file);
      if (!media) {
        toast(`${file.name}: not a video, audio, image, text or JSON file`);
        return;
      }
      const declared = (node.asset as { type?: string } | null)?.type;
      // The asset's media type follows the file chosen (the gateway checks it against downstream inputs).
      if (declared !== media && !(await updateNode(id, { asset: { type: media } }))) return;
      const setProgress = (fraction: number) => setUploads((m) => new Map(m).set(id, fraction));
      setProgress(0);
      try {
        const { node: saved } = await api.uploadAsset(pipelineId, id, file, file.type || guessMime(file.name), setProgress);
        dispatch({ kind: "saved", node: saved });
      } catch (error) {
        toast(`Upload of ${file.name} failed: ${errorMessage(error)}`);
      } finally {
        setUploads((m) => {
          const next = new Map(m);
          next.delete(id);
          return next;
        });
      }
    },
    [api, pipelineId, dispatch, toast, updateNode, latest],
  );
  return { upload, uploads };
}
