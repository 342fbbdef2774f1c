"use client";

import { useCallback } from "react";
import { errorMessage, type Api } from "@/lib/api";
import { downloadJson, exportFileName } from "@/lib/download";

/** Downloads the pipeline as the gateway exports it (a JSON document the list page can import). */
export function useExport(api: Api, pipelineId: string, toast: (message: string) => void) {
  return useCallback(async () => {
    try {
      const document = await api.exportPipeline(pipelineId);
      downloadJson(document, exportFileName(document.title));
    } catch (error) {
      toast(`Export failed: ${errorMessage(error)}`);
    }
  }, [api, pipelineId, toast]);
}
