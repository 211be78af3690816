#!/usr/bin/env bash
# Records the replay test's histories (test/fixtures/histories/, see test/support/histories.ts):
# runs the integration tests that between them complete every workflow type on the simulator,
# then keeps one history per type. Run it after an intended incompatible workflow change
# (docs/deploy.md, "Upgrading the workflow code") and commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."

rm -f test/fixtures/histories/*.json
PM_RECORD_HISTORIES=1 node_modules/.bin/vitest run --project integration \
  test/integration/operation-vm-action.test.ts \
  test/integration/evacuation-workflow.test.ts \
  test/integration/lifecycle-vm.test.ts \
  test/integration/lifecycle-storage.test.ts \
  test/integration/bulk-action.test.ts \
  test/integration/lxc-patch.test.ts \
  test/integration/create-stateful-vm.test.ts \
  test/integration/runbook-run.test.ts \
  test/integration/template-build.test.ts \
  test/integration/clusters-lifecycle.test.ts \
  test/integration/reconcile-fleet.test.ts \
  test/integration/maintenance-rollout.test.ts \
  test/integration/backup-operation.test.ts \
  test/integration/suite-pve-faults.test.ts \
  "$@"
