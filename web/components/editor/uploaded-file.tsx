"use client";

import { useState } from "react";
import type { MediaType } from "@vp/contracts";
import { formatBytes, formatDuration } from "@/lib/format";
import type { EditorNode } from "@/lib/graph-state";
import { MEDIA_LABEL } from "@/lib/node-types";
import { useEditor } from "./context";

interface UploadedAsset {
  type?: MediaType;
  source?: string;
  size?: number;
  name?: string | null;
}

/**
 * What an asset node's upload is: a paused frame of the video (or the image), the file's name as it was chosen and
 * its duration and size. The file is read back from the gateway (GET .../asset, as outputs are); the duration comes
 * from the browser's own reading of it, so nothing probes the file on the server.
 */
export function UploadedFile({ node, large }: { node: EditorNode; large?: boolean }) {
  const { api, pipelineId } = useEditor();
  const asset = (node.asset ?? {}) as UploadedAsset;
  const [duration, setDuration] = useState<number | null>(null);
  const [unreadable, setUnreadable] = useState(false);
  const url = api.assetUrl(pipelineId, node.id, asset.source);
  const type = asset.type ?? "video";
  const name = typeof asset.name === "string" && asset.name ? asset.name : null;
  const prefix = large ? "panel-" : "";
  const facts = [duration !== null ? formatDuration(duration) : "", asset.size ? formatBytes(asset.size) : ""].filter(Boolean).join(" · ");
  const onMetadata = (media: HTMLMediaElement) => setDuration(Number.isFinite(media.duration) ? media.duration : null);
  return (
    <div className={`uploaded-file${large ? " large" : ""}`}>
      {type === "video" && !unreadable && (
        // A frame half a second in (#t), paused: the picture the producer recognises the clip by.
        <video
          key={url}
          className="asset-thumb nodrag"
          src={`${url}#t=0.5`}
          preload="metadata"
          muted
          playsInline
          onLoadedMetadata={(e) => onMetadata(e.currentTarget)}
          onError={() => setUnreadable(true)}
          data-testid={`${prefix}asset-thumb-${node.id}`}
        />
      )}
      {type === "audio" && (
        <audio key={url} src={url} preload="metadata" hidden onLoadedMetadata={(e) => onMetadata(e.currentTarget)} onError={() => setUnreadable(true)} />
      )}
      {type === "image" && !unreadable && (
        // eslint-disable-next-line @next/next/no-img-element
        <img key={url} className="asset-thumb" src={url} alt="" onError={() => setUnreadable(true)} data-testid={`${prefix}asset-thumb-${node.id}`} />
      )}
      <span className="asset-name" title={name ?? undefined} data-testid={`${prefix}asset-name-${node.id}`}>
        {name ?? `${MEDIA_LABEL[type]} file uploaded`}
      </span>
      {facts && (
        <span className="small" data-testid={`${prefix}asset-facts-${node.id}`}>
          {facts}
        </span>
      )}
    </div>
  );
}
