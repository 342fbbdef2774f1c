"use client";

import { createContext, useContext, useMemo, type ReactNode } from "react";
import { createApi, type Api } from "@/lib/api";

const ApiContext = createContext<Api | null>(null);

/** The gateway client for the whole app; its URL is read on the server at request time (GATEWAY_URL). */
export function GatewayProvider({ gatewayUrl, children }: { gatewayUrl: string; children: ReactNode }) {
  const api = useMemo(() => createApi(gatewayUrl), [gatewayUrl]);
  return <ApiContext.Provider value={api}>{children}</ApiContext.Provider>;
}

export function useApi(): Api {
  const api = useContext(ApiContext);
  if (!api) throw new Error("useApi outside GatewayProvider");
  return api;
}
