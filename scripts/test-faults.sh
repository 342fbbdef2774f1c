#!/usr/bin/env bash
# The fault suite (vitest.faults.config.ts). With VP_TEST_IMAGES=1 (CI sets it) the images test runs beside it:
# the fault suite mostly waits on outages of its own nats-server and PostgreSQL, the image builds mostly compute,
# so together they take little longer than the longer of the two. Fails if either fails.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${VP_TEST_IMAGES:-}" != "1" ]; then
  exec npx vitest run --config vitest.faults.config.ts
fi

mkdir -p .artifacts
echo "images test running beside the fault suite; its output: .artifacts/images-test.log"
npm run test:images > .artifacts/images-test.log 2>&1 &
images=$!
npx vitest run --config vitest.faults.config.ts
faults=$?
wait "$images"
images_rc=$?
echo "---- images test (.artifacts/images-test.log) ----"
cat .artifacts/images-test.log
echo "fault suite exit ${faults}, images test exit ${images_rc}"
[ "$faults" -eq 0 ] && [ "$images_rc" -eq 0 ]
