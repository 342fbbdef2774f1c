"use client";

import { createContext, useContext, useMemo, type ReactNode } from "react";
import { createApi, type Api } from "@/lib/api";
import { createAuth, createOidcAuth } from "@/lib/auth";
import { AccountProvider } from "./account";

const ApiContext = createContext<Api | null>(null);

/**
 * The gateway client for the whole app; its URL is read on the server at request time (GATEWAY_URL), and so is
 * how users sign in: "oidc" through the editor's /auth routes when OIDC_ISSUER is set, else the gateway's dev login.
 */
export function GatewayProvider({ gatewayUrl, signIn, children }: { gatewayUrl: string; signIn: "dev" | "oidc"; children: ReactNode }) {
  const oidc = useMemo(() => (signIn === "oidc" ? createOidcAuth(gatewayUrl) : null), [gatewayUrl, signIn]);
  const api = useMemo(() => createApi(gatewayUrl, oidc ?? createAuth(gatewayUrl)), [gatewayUrl, oidc]);
  return (
    <ApiContext.Provider value={api}>
      <AccountProvider auth={oidc}>{children}</AccountProvider>
    </ApiContext.Provider>
  );
}

export function useApi(): Api {
  const api = useContext(ApiContext);
  if (!api) throw new Error("useApi outside GatewayProvider");
  return api;
}
