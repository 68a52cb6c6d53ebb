// Package examples holds dotlock's example programs, one directory each —
// each a main package whose doc comment says what it shows — and the tests
// that keep them, and the commands in README.md, working:
//
//   - jobqueue: worker processes share jobs through per-job locks; a worker
//     SIGKILLed mid-job has its job redone, and no job is done twice.
//   - script: nightly.sh, a cron job that uses the dotlock command in place
//     of flock(1), with dotlock lock --pid $$ / dotlock unlock across steps.
//   - rwfile: lockdir.OpenRead, OpenWrite and Transform on one data file
//     shared by reader and writer processes.
//   - fencing: a paused holder loses its lease, and its late write is
//     rejected by the storage because of its old fencing token.
//
// Run one with go run ./examples/NAME (from the repository's root).
// TestExamples runs each; TestREADME runs or checks every command in
// README.md.
package examples
