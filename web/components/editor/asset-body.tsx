"use client";

import { useRef, useState, type DragEvent } from "react";
import type { MediaType } from "@vp/contracts";
import { MEDIA_LABEL } from "@/lib/node-types";
import type { EditorNode } from "@/lib/graph-state";
import { UploadIcon } from "../icons";
import { useEditor } from "./context";
import { PlaceholderChips } from "./placeholders";
import { ProgressBar } from "./status";
import { UploadedFile } from "./uploaded-file";

const ACCEPT: Record<MediaType, string> = {
  video: "video/mp4,video/quicktime,video/webm,video/x-matroska,.mp4,.mov,.webm,.mkv",
  audio: "audio/mpeg,audio/wav,audio/mp4,audio/ogg,.mp3,.wav,.m4a,.ogg",
  image: "image/png,image/jpeg,.png,.jpg,.jpeg",
  text: "text/plain,.txt",
  json: "application/json,.json",
};

interface AssetShape {
  type?: MediaType;
  content?: string;
  source?: string;
  size?: number;
  contentType?: string;
}

/** An asset node's file: drop or choose one (uploaded with a progress bar), or what was uploaded. */
export function AssetUpload({ node, compact }: { node: EditorNode; compact?: boolean }) {
  const { upload, uploads } = useEditor();
  const input = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);
  const asset = (node.asset ?? {}) as AssetShape;
  const progress = uploads.get(node.id);
  const editable = node.status === "pending";

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    event.stopPropagation();
    setOver(false);
    const file = event.dataTransfer.files?.[0];
    if (file && editable) void upload(node.id, file);
  };

  const chooser = (
    <input
      ref={input}
      type="file"
      hidden
      accept={asset.type ? ACCEPT[asset.type] : undefined}
      data-testid={`file-input-${node.id}`}
      onChange={(e) => {
        const file = e.target.files?.[0];
        e.target.value = "";
        if (file) void upload(node.id, file);
      }}
    />
  );

  if (progress !== undefined) {
    return (
      <div className="asset-box uploading" data-testid={`upload-progress-${node.id}`}>
        <span className="small">Uploading… {Math.round(progress * 100)}%</span>
        <ProgressBar percent={progress * 100} label="Upload progress" />
      </div>
    );
  }
  if (asset.source) {
    return (
      <div className={`asset-box uploaded${compact ? " compact" : ""}`} data-testid={`asset-uploaded-${node.id}`}>
        <UploadedFile node={node} large={compact} />
        {editable && (
          <button type="button" className="link-button nodrag" onClick={() => input.current?.click()}>
            Replace
          </button>
        )}
        {chooser}
      </div>
    );
  }
  return (
    <div
      className={`asset-box dropzone nodrag${over ? " over" : ""}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={onDrop}
      onClick={() => editable && input.current?.click()}
      role="button"
      tabIndex={0}
      onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && input.current?.click()}
      data-testid={`dropzone-${node.id}`}
    >
      <UploadIcon />
      <span className="small">
        Drop {asset.type === "audio" || asset.type === "image" ? "an" : "a"} {asset.type ? MEDIA_LABEL[asset.type].toLowerCase() : ""} file or <u>choose one</u>
      </span>
      {chooser}
    </div>
  );
}

/** Text and JSON assets are typed in place; saved as the producer types (debounced). */
export function AssetText({ node, rows = 4 }: { node: EditorNode; rows?: number }) {
  const { textDraft, setTextDraft, readOnly } = useEditor();
  const asset = (node.asset ?? {}) as AssetShape;
  const value = textDraft(node.id) ?? asset.content ?? "";
  const editable = node.status === "pending" && !readOnly;
  let jsonError: string | null = null;
  if (asset.type === "json" && value.trim()) {
    try {
      JSON.parse(value);
    } catch (error) {
      jsonError = (error as Error).message;
    }
  }
  return (
    <div className="asset-text">
      <textarea
        className="nodrag nowheel"
        rows={rows}
        value={value}
        readOnly={!editable}
        placeholder={asset.type === "json" ? '{ "key": "value" }' : "Type the text…"}
        onChange={(e) => setTextDraft(node.id, e.target.value)}
        aria-label={`${node.title} content`}
        data-testid={`asset-text-${node.id}`}
      />
      {jsonError && <span className="field-error">Not valid JSON: {jsonError}</span>}
      <PlaceholderChips text={value} testId={`placeholders-${node.id}`} />
    </div>
  );
}

export function isTextAsset(node: EditorNode): boolean {
  const type = (node.asset as AssetShape | null)?.type;
  return node.type === "asset" && (type === "text" || type === "json");
}
