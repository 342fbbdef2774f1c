"use client";

import { usePathname } from "next/navigation";
import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { type Account, NoAccessError, type OidcAuth } from "@/lib/auth";
import { LoadingState } from "./states";
import "./account.css";

export type AccountState =
  | { status: "dev" }
  | { status: "loading" }
  | { status: "signed-in"; account: Account }
  | { status: "no-access"; reason: string; name: string }
  | { status: "error"; reason: string };

const AccountContext = createContext<AccountState>({ status: "dev" });

/** Who is signed in (OIDC sign-in), or { status: "dev" } with the dev login, where everyone has every role. */
export const useAccount = () => useContext(AccountContext);

/**
 * Whether the user may change pipelines: with the dev login always, signed in at a provider only with the editor
 * role (the gateway refuses their writes otherwise; the controls say why instead).
 */
export function useCanEdit(): { canEdit: boolean; reason?: string } {
  const state = useAccount();
  if (state.status !== "signed-in" || state.account.roles.includes("editor")) return { canEdit: true };
  return { canEdit: false, reason: readOnlyReason(state.account) };
}

const readOnlyReason = (account: Account) =>
  `Changes need the editor role; your roles: ${account.roles.join(", ") || "none"}. Ask whoever manages sign-in at your identity provider to grant it.`;

/**
 * With OIDC sign-in: asks for the user (signing them in first, see createOidcAuth) and shows the bar above every
 * page. A user the gateway grants no role gets a page saying so instead of pages that would only fail.
 */
export function AccountProvider({ auth, children }: { auth: OidcAuth | null; children: ReactNode }) {
  const pathname = usePathname();
  // The sign-in's own pages (signed out, a failed sign-in) must not start another sign-in.
  const signInPage = pathname === "/auth" || pathname.startsWith("/auth/");
  const [state, setState] = useState<AccountState>(auth ? { status: "loading" } : { status: "dev" });

  useEffect(() => {
    if (!auth || signInPage) return;
    let cancelled = false;
    auth.account().then(
      (account) => !cancelled && setState({ status: "signed-in", account }),
      (error: Error) =>
        !cancelled &&
        setState(
          error instanceof NoAccessError ? { status: "no-access", reason: error.message, name: error.userName } : { status: "error", reason: error.message },
        ),
    );
    return () => {
      cancelled = true;
    };
  }, [auth, signInPage]);

  if (!auth || signInPage) return <AccountContext.Provider value={{ status: "dev" }}>{children}</AccountContext.Provider>;
  return (
    <AccountContext.Provider value={state}>
      <div className="account" data-testid="account">
        <div className="account-bar">
          {state.status === "signed-in" && (
            <>
              <span className="muted">Signed in as</span>
              <span className="account-name" data-testid="account-name" title={state.account.subject}>
                {state.account.name}
              </span>
              <span className="account-roles" data-testid="account-roles" data-roles={state.account.roles.join(" ")}>
                {state.account.roles.map((role) => (
                  <span key={role} className="account-role">
                    {role}
                  </span>
                ))}
              </span>
            </>
          )}
          {state.status === "no-access" && state.name && (
            <>
              <span className="muted">Signed in as</span>
              <span className="account-name" data-testid="account-name">
                {state.name}
              </span>
            </>
          )}
          {state.status !== "loading" && (
            <button type="button" className="button secondary" onClick={() => void auth.signOut()} data-testid="sign-out">
              Sign out
            </button>
          )}
        </div>
        {state.status === "signed-in" && !state.account.roles.includes("editor") && (
          <div className="account-read-only" role="note" data-testid="read-only">
            <strong>Read only.</strong> You can look at pipelines, their runs and results, but not change them. {readOnlyReason(state.account)}
          </div>
        )}
      </div>
      {state.status === "loading" ? (
        <main className="page">
          <LoadingState label="Signing in…" />
        </main>
      ) : state.status === "no-access" || state.status === "error" ? (
        <main className="page">
          <div className="state-box error" role="alert" data-testid={state.status === "no-access" ? "no-access" : "sign-in-error"}>
            <strong>{state.status === "no-access" ? "You have no access to the pipelines" : "Signing in did not work"}</strong>
            <p>{state.reason}</p>
            {state.status === "no-access" ? (
              <p>Ask whoever manages sign-in at your identity provider for the viewer or editor role, then sign in again.</p>
            ) : (
              <button type="button" className="button" onClick={() => window.location.reload()}>
                Try again
              </button>
            )}
          </div>
        </main>
      ) : (
        children
      )}
    </AccountContext.Provider>
  );
}
