/** What one status call says about a provider job. */
export type JobPoll =
  | { state: "running" /** 0-1 when the provider reports it. */; progress?: number }
  | { state: "succeeded"; url: string; durationSeconds?: number }
  | { state: "failed"; reason: string };
