import { errorCode, PROBLEMS, type Problem } from "./reasons";

/** Why a sign-in did not complete, and a way to try again. */
export default async function SignInProblem({ searchParams }: { searchParams: Promise<{ reason?: string; error?: string }> }) {
  const params = await searchParams;
  const reason: Problem = params.reason && params.reason in PROBLEMS ? (params.reason as Problem) : "failed";
  const code = errorCode(params.error);
  return (
    <main className="page">
      <div className="state-box error" role="alert" data-testid="sign-in-problem" data-reason={reason}>
        <strong>{PROBLEMS[reason].title}</strong>
        <p>
          {PROBLEMS[reason].message}
          {code ? ` (the provider said: ${code})` : ""}
        </p>
        <div className="row">
          <a className="button" href="/auth/sign-in">
            Sign in again
          </a>
        </div>
      </div>
    </main>
  );
}
