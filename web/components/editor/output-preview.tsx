"use client";

import { useEffect, useState } from "react";
import type { EditorNode } from "@/lib/graph-state";
import { useEditor } from "./context";

/**
 * A completed node's output, inline: video and audio players that seek (the gateway's output route
 * answers HTTP Range requests), images, and text or JSON shown as text.
 */
export function OutputPreview({ node, large }: { node: EditorNode; large?: boolean }) {
  const { api, pipelineId } = useEditor();
  const output = node.output;
  if (!output || node.status !== "completed") return null;
  const version = String(node.metadata?.jobId ?? output.s3Key);
  const url = api.outputUrl(pipelineId, node.id, version);
  const prefix = large ? "panel-" : "";
  switch (output.type) {
    case "video":
      return (
        <video
          key={url}
          className={`preview nodrag nowheel${large ? " large" : ""}`}
          src={url}
          controls
          preload="metadata"
          playsInline
          data-testid={`${prefix}output-video-${node.id}`}
        />
      );
    case "audio":
      return <audio key={url} className="preview-audio nodrag" src={url} controls preload="metadata" data-testid={`${prefix}output-audio-${node.id}`} />;
    case "image":
      // eslint-disable-next-line @next/next/no-img-element
      return <img key={url} className="preview nodrag" src={url} alt={`${node.title} output`} data-testid={`${prefix}output-image-${node.id}`} />;
    case "text":
    case "json":
      return <TextOutput url={url} json={output.type === "json"} testId={`${prefix}output-text-${node.id}`} />;
  }
}

function TextOutput({ url, json, testId }: { url: string; json: boolean; testId: string }) {
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let cancelled = false;
    // With the gateway's output cookie (web/lib/auth.ts), like the <video> and <img> elements.
    fetch(url, { credentials: "include" })
      .then(async (response) => {
        if (!response.ok) throw new Error(`the gateway answered ${response.status}`);
        const body = await response.text();
        if (cancelled) return;
        if (json) {
          try {
            setText(JSON.stringify(JSON.parse(body), null, 2));
            return;
          } catch {
            /* shown as is */
          }
        }
        setText(body);
      })
      .catch((e: Error) => !cancelled && setError(`Could not load the output: ${e.message}`));
    return () => {
      cancelled = true;
    };
  }, [url, json]);
  if (error) return <p className="field-error">{error}</p>;
  return (
    <pre className="preview-text nodrag nowheel" data-testid={testId}>
      {text ?? "Loading…"}
    </pre>
  );
}
