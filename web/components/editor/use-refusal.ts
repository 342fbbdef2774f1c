"use client";

import { useCallback, useState } from "react";
import { errorMessage } from "@/lib/api";
import { refusalOf, type Refusal } from "@/lib/runs";
import type { ServerProblems } from "./use-run-problems";

/**
 * What the gateway's last refusal of a run said (shown on the canvas until dismissed or a run starts), and the
 * problems it listed, tied to the graph's `structure` at the time. Other failures are toasts.
 */
export function useRefusal(structure: string, toast: (message: string) => void) {
  const [refusal, setRefusal] = useState<Refusal | null>(null);
  const [server, setServer] = useState<ServerProblems>(null);

  const refused = useCallback(
    (action: string, error: unknown) => {
      const shown = refusalOf(action, error);
      if (!shown) {
        toast(`${action}: ${errorMessage(error)}`);
        return;
      }
      if (shown.problems?.length) setServer({ problems: shown.problems, signature: structure });
      setRefusal(shown);
    },
    [structure, toast],
  );

  const clearRefusal = useCallback(() => {
    setRefusal(null);
    setServer(null);
  }, []);
  const dismissRefusal = useCallback(() => setRefusal(null), []);
  return { refusal, server, refused, clearRefusal, dismissRefusal };
}
