/**
 * Preload for bench/runs.bench.ts (BENCH_RUN_PROFILE_DIR): Node 20 refuses --cpu-prof in NODE_OPTIONS, so each
 * service started with `NODE_OPTIONS=--import ./bench/cpu-profile.mjs` profiles itself through the inspector
 * and writes <dir>/<service>-<pid>.cpuprofile when it exits (open in Chrome DevTools or speedscope).
 */
import { Session } from "node:inspector";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.env.VP_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 1000 });
  session.post("Profiler.start");
  const name = (process.argv[1] ?? "node").replace(/.*services\/([^/]+)\/.*/, "$1").replace(/.*\//, "");
  // Same-thread inspector calls complete synchronously, so the profile is written inside the exit handler.
  process.on("exit", () => {
    session.post("Profiler.stop", (error, result) => {
      if (!error) writeFileSync(join(dir, `${name}-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
