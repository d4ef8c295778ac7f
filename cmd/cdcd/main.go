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
	"os"
	"runtime"
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

func main() {
	err := runMain(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if !errors.Is(err, errUsageShown) {
		fmt.Fprintln(os.Stderr, "cdcd:", err)
	}
	os.Exit(code)
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
