/** Where the provider's sign-out comes back to (the post-logout redirect URI). */
export default function SignedOut() {
  return (
    <main className="page">
      <div className="state-box" role="status" data-testid="signed-out">
        <strong>You are signed out of the editor</strong>
        <p>The editor no longer holds your sign-in; where the identity provider offers it, you were signed out there too.</p>
        <div className="row">
          <a className="button" href="/auth/sign-in" data-testid="sign-in-again">
            Sign in again
          </a>
        </div>
      </div>
    </main>
  );
}
