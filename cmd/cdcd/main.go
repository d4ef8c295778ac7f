// Command cdcd streams committed row changes from PostgreSQL and MySQL/MariaDB into Kafka,
// exactly once, as Avro records whose schemas a schema registry accepted.
//
//	cdcd run      --config FILE   run every pipeline until SIGTERM/SIGINT, then drain
//	cdcd validate --config FILE   check the file without connecting
//	cdcd check    --config FILE   connect and check every prerequisite, with fixes
//	cdcd dlq replay --config FILE --pipeline NAME [--from OFFSET] [--class CLASS]
//	cdcd reset-offsets --config FILE --pipeline NAME
//	cdcd version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/redact"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// outputSecrets are the secrets of the loaded configuration (see loadConfig). Everything cdcd
// prints passes through it: stdout and stderr (logs, command output, errors, panics) are
// wrapped in main, /readyz reasons are redacted by the health registry.
var outputSecrets = redact.New()

func main() {
	stdout, stderr := outputSecrets.Writer(os.Stdout), outputSecrets.Writer(os.Stderr)
	log.SetOutput(stderr) // a library that logs through the standard logger
	defer exitOnPanic(stderr)
	err := runMain(context.Background(), os.Args[1:], stdout, stderr)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if !errors.Is(err, errUsageShown) {
		fmt.Fprintln(stderr, "cdcd:", err)
	}
	os.Exit(code)
}

// exitOnPanic ends the process on a panic the way the runtime would (the value, the stack,
// exit status 2), but redacted: a panic value can hold a connection string. Defer it first
// in main and in every goroutine cdcd starts that may panic.
func exitOnPanic(stderr io.Writer) {
	v := recover()
	if v == nil {
		return
	}
	fmt.Fprintf(stderr, "panic: %v\n\n%s", v, debug.Stack())
	os.Exit(2)
}

// loadConfig loads the configuration and registers its secrets, so nothing cdcd prints from
// then on shows them. Every command that reads a configuration loads it here.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	outputSecrets.Add(cfg.Secrets()...)
	return cfg, nil
}

// printWarnings lists what is valid but unwise in the file, each with its fix.
func printWarnings(w io.Writer, path string, cfg *config.Config) {
	for _, p := range cfg.Warnings() {
		fmt.Fprintf(w, "%s:%d: %s: warning: %s\n      fix: %s\n", path, p.Line, p.Path, p.Message, p.Fix)
	}
}

// logWarnings logs the same warnings at start.
func logWarnings(log *slog.Logger, cfg *config.Config) {
	for _, p := range cfg.Warnings() {
		log.Warn("configuration: "+p.Message, "key", p.Path, "line", p.Line, "fix", p.Fix)
	}
}

var errUsageShown = errors.New("usage shown")

const usage = `cdcd streams database changes into Kafka exactly once.

Usage:
  cdcd run      --config FILE   run every pipeline until SIGTERM/SIGINT, then drain
  cdcd validate --config FILE   check the configuration file without connecting
  cdcd check    --config FILE   connect and check every prerequisite, with fixes
  cdcd dlq replay --config FILE --pipeline NAME [--from OFFSET] [--class CLASS]
                                re-publish dead letters to their topics, once
  cdcd reset-offsets --config FILE --pipeline NAME
                                forget a pipeline's committed position (after a slot was
                                recreated on purpose); its next start follows the slot
  cdcd snapshot --config FILE --pipeline NAME --table SCHEMA.TABLE [--where SQL]
                                ask a running pipeline to snapshot a table (or the rows
                                matching SQL) while it keeps streaming
  cdcd healthcheck [--url URL]  probe a running cdcd's /healthz (for container HEALTHCHECK)
  cdcd version                  print the version
`

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{2, errUsageShown}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		path, err := configFlag(cmd, rest, stderr)
		if err != nil {
			return err
		}
		return runCommand(ctx, path, stderr)
	case "validate":
		path, err := configFlag(cmd, rest, stderr)
		if err != nil {
			return err
		}
		return validateCommand(path, stdout)
	case "check":
		path, err := configFlag(cmd, rest, stderr)
		if err != nil {
			return err
		}
		return checkCommand(ctx, path, stdout)
	case "dlq":
		return dlqCommand(ctx, rest, stdout, stderr)
	case "reset-offsets":
		return resetOffsetsCommand(ctx, rest, stdout, stderr)
	case "snapshot":
		return snapshotCommand(ctx, rest, stdout, stderr)
	case "healthcheck":
		return healthcheckCommand(rest, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "cdcd %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "cdcd: unknown command %q\n\n%s", cmd, usage)
	return &exitError{2, errUsageShown}
}

func configFlag(cmd string, args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet("cdcd "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return "", &exitError{2, errUsageShown}
	}
	if *path == "" {
		fmt.Fprintf(stderr, "cdcd %s: --config FILE is required\n", cmd)
		return "", &exitError{2, errUsageShown}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cdcd %s: unexpected arguments %v\n", cmd, fs.Args())
		return "", &exitError{2, errUsageShown}
	}
	return *path, nil
}
