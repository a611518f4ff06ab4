// Package crashpoint names the steps of swarmguard's actions at which the crash-point harness kills the
// process. At is a no-op in every ordinary build: the hook that reads its environment variable and sends SIGKILL is
// compiled in only with the build tag crashhook, which the integration tests' binary uses and the
// production binary never does (strings on the binary finds no trace of the variable's name). The same build
// can also hold the process at a step (SG_TEST_HOLD=STEP=FILE) until a drill has changed the world there,
// such as Vault stopped between an action and its escrow.
//
// Like sensitive, it is a leaf: it imports nothing of ours, so every package may mark its steps.
package crashpoint
