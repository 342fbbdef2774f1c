import Link from "next/link";

export default function NotFound() {
  return (
    <main className="page">
      <div className="state-box">
        <strong>Page not found</strong>
        <Link className="button" href="/">
          Back to pipelines
        </Link>
      </div>
    </main>
  );
}
