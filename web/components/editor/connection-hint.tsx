"use client";

import { Panel, useConnection } from "@xyflow/react";
import { connectionHint } from "@/lib/connections";
import { useEditor } from "./context";

/** Above the canvas while an edge is drawn: where to drop it, what it would connect, or why it cannot. */
export function ConnectionHint() {
  const connection = useConnection();
  const { lookup, nodes } = useEditor();
  if (!connection.inProgress) return null;
  const { kind, text } = connectionHint(connection, lookup, nodes);
  return (
    <Panel position="top-center">
      <div className={`connection-hint ${kind}`} role={kind === "invalid" ? "alert" : "status"} data-testid="connection-hint" data-kind={kind}>
        {text}
      </div>
    </Panel>
  );
}
