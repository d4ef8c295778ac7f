// Command cdcd streams committed row changes from PostgreSQL and MySQL/MariaDB into Kafka,
// exactly once, as Avro records whose schemas a schema registry accepted.
//
// Its subcommands are in commands (cdcd --help lists them, cdcd COMMAND --help describes one).
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
	"slices"
	"strings"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/dlq"
	"github.com/cdcd-dev/cdcd/redact"
	"github.com/cdcd-dev/cdcd/topics"
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

// loadValid loads the configuration and applies every rule validate applies (the file's own,
// and the topics no two writers may share). validate, check and run all start here, so check
// passes nothing validate refuses.
func loadValid(path string) (*config.Config, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, &exitError{1, err}
	}
	if err := topics.Check(cfg); err != nil {
		return nil, &exitError{1, fmt.Errorf("%s: %w", path, err)}
	}
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

// commands are cdcd's subcommands, in the order cdcd --help lists them.
var commands = []*command{
	{
		name: "run", args: "--config FILE",
		summary: "run every pipeline and window job until SIGTERM/SIGINT, then drain",
		help: `Runs every pipeline and window job of the configuration: each pipeline streams its
source's committed changes into Kafka (snapshotting tables first as configured), and the HTTP
port serves the status page (/), /healthz, /readyz and /metrics. On SIGTERM or SIGINT it
commits the open batch, acknowledges it to the source, and exits within shutdown_timeout.
With fleet.enabled it runs only the pipelines its fleet group assigns to it.`,
		example: "cdcd run --config /etc/cdcd/cdcd.yaml\nCDCD_CONFIG=/etc/cdcd/cdcd.yaml cdcd run",
		flags: func(fs *flag.FlagSet) func(context.Context, io.Writer, io.Writer) error {
			cfgPath := configFlag(fs)
			return func(ctx context.Context, _, stderr io.Writer) error {
				path, err := cfgPath(stderr, "run")
				if err != nil {
					return err
				}
				return runCommand(ctx, path, stderr)
			}
		},
	},
	{
		name: "validate", args: "--config FILE",
		summary: "check the configuration file without connecting",
		help: `Reads, expands and checks the configuration file without connecting to anything: every
problem with its line and fix, and the warnings (valid but unwise settings). Exits 1 when
the file has a problem.`,
		example: "cdcd validate --config cdcd.yaml",
		flags: func(fs *flag.FlagSet) func(context.Context, io.Writer, io.Writer) error {
			cfgPath := configFlag(fs)
			return func(_ context.Context, stdout, stderr io.Writer) error {
				path, err := cfgPath(stderr, "validate")
				if err != nil {
					return err
				}
				return validateCommand(path, stdout)
			}
		},
	},
	{
		name: "check", args: "--config FILE",
		summary: "validate, then connect and check every prerequisite, with fixes",
		help: `Everything validate checks, then connects to the brokers, the schema registry and every
source, and checks each prerequisite (server version and settings, grants, slot,
publication, binlog format, transactions, topics), printing a fix for each that fails.
Exits 1 when any check fails; warnings do not fail it.`,
		example: "cdcd check --config cdcd.yaml",
		flags: func(fs *flag.FlagSet) func(context.Context, io.Writer, io.Writer) error {
			cfgPath := configFlag(fs)
			return func(ctx context.Context, stdout, stderr io.Writer) error {
				path, err := cfgPath(stderr, "check")
				if err != nil {
					return err
				}
				return checkCommand(ctx, path, stdout)
			}
		},
	},
	{
		name: "dlq replay", args: "--config FILE --pipeline NAME [--from OFFSET] [--class CLASS]",
		summary: "re-publish a pipeline's dead letters to their topics, once",
		help: `Re-publishes the dead letters of a pipeline (its dlq topic) to the topics they were meant
for, each exactly once: a replay that stops can be run again. Fix the cause first (a schema
the registry refused, a value the encoder could not write).`,
		example: "cdcd dlq replay --config cdcd.yaml --pipeline shop --class schema_rejected",
		flags: func(fs *flag.FlagSet) func(context.Context, io.Writer, io.Writer) error {
			cfgPath := configFlag(fs)
			name := fs.String("pipeline", "", "the `NAME` of the pipeline whose dead letters to replay (required)")
			from := fs.Int64("from", 0, "the first dead-letter `OFFSET` to consider")
			class := fs.String("class", "", "replay only this error `CLASS`: "+strings.Join(dlq.Classes, ", "))
			return func(ctx context.Context, stdout, stderr io.Writer) error {
				path, err := cfgPath(stderr, "dlq replay")
				if err != nil {
					return err
				}
				if *name == "" {
					return requireFlag(stderr, "dlq replay", "--pipeline NAME")
				}
				return dlqReplay(ctx, path, *name, *from, *class, stdout, stderr)
			}
		},
	},
	{
		name: "reset-offsets", args: "--config FILE --pipeline NAME [--accept-slot LSN]",
		summary: "forget a pipeline's committed position (after a slot was recreated on purpose)",
		help: `Forgets a pipeline's committed position, so its next start follows the replication slot
from where the slot is (after the slot was recreated on purpose). It also fences a running
instance of the pipeline, which restarts and sees the reset. With --accept-slot it keeps the
position and only accepts the slot's confirmed position, as a gap error advises: nothing is
then published twice.`,
		example: "cdcd reset-offsets --config cdcd.yaml --pipeline shop --accept-slot 0/16B3748",
		flags: func(fs *flag.FlagSet) func(context.Context, io.Writer, io.Writer) error {
			cfgPath := configFlag(fs)
			name := fs.String("pipeline", "", "the `NAME` of the pipeline whose committed position to forget (required)")
			acceptSlot := fs.String("accept-slot", "", "keep the committed position and accept the slot's confirmed position `LSN` (e.g. 0/16B3748), as a gap error advises")
			return func(ctx context.Context, stdout, stderr io.Writer) error {
				path, err := cfgPath(stderr, "reset-offsets")
				if err != nil {
					return err
				}
				if *name == "" {
					return requireFlag(stderr, "reset-offsets", "--pipeline NAME")
				}
				return resetOffsets(ctx, path, *name, *acceptSlot, stdout)
			}
		},
	},
	{
		name: "snapshot", args: "--config FILE --pipeline NAME --table SCHEMA.TABLE [--where CONDITION] [--wait [--url URL]]",
		summary: "ask a running pipeline to snapshot a table while it keeps streaming",
		help: `Asks a running pipeline to snapshot a table (or the rows matching --where) while it keeps
streaming. The request travels through the database's log, so the pipeline sees it in order
with the changes and takes it up again after a restart; follow it on the status page (/),
/readyz (phase snapshotting) and cdcd_snapshot_rows_total. With --wait it follows the
snapshot on the running cdcd's HTTP port (http.listen, or --url) and shows its progress (rows,
percent, chunks, rate) until it ends; it exits 1 if the pipeline fails meanwhile.`,
		example: "cdcd snapshot --config cdcd.yaml --pipeline shop --table public.orders --wait\ncdcd snapshot --config cdcd.yaml --pipeline shop --table public.orders --where \"created_at > '2024-01-01' AND region IN ('eu', 'us')\"",
		flags: func(fs *flag.FlagSet) func(context.Context, io.Writer, io.Writer) error {
			cfgPath := configFlag(fs)
			name := fs.String("pipeline", "", "the `NAME` of the pipeline that captures the table (required)")
			table := fs.String("table", "", "the table to snapshot, as `SCHEMA.TABLE` (database.table for MySQL) (required)")
			where := fs.String("where", "", "only the rows matching this `CONDITION`: columns compared with literals, IN, BETWEEN, LIKE, IS [NOT] NULL, AND/OR/NOT")
			wait := fs.Bool("wait", false, "follow the snapshot until it ends, showing its progress; exit 1 if the pipeline fails")
			url := fs.String("url", "", "with --wait, the running cdcd's HTTP `URL` (default: from http.listen)")
			return func(ctx context.Context, stdout, stderr io.Writer) error {
				path, err := cfgPath(stderr, "snapshot")
				if err != nil {
					return err
				}
				if *name == "" {
					return requireFlag(stderr, "snapshot", "--pipeline NAME")
				}
				if *table == "" {
					return requireFlag(stderr, "snapshot", "--table SCHEMA.TABLE")
				}
				var w *snapshotWait
				if *wait {
					w = &snapshotWait{url: *url, tty: isTerminal(os.Stdout)}
				} else if *url != "" {
					return usageError(stderr, "snapshot", "--url is for --wait")
				}
				return requestSnapshot(ctx, path, *name, *table, *where, w, stdout)
			}
		},
	},
	verifyCommand,
	{
		name: "healthcheck", args: "[--url URL]",
		summary: "probe a running cdcd's /healthz (for a container HEALTHCHECK)",
		help: `Probes the /healthz endpoint of a running cdcd and exits 0 when it answers 200, 1
otherwise: the container image has no curl. The URL comes from --url, else
$CDCD_HEALTHCHECK_URL, else http://127.0.0.1:9187/healthz.`,
		example: "cdcd healthcheck --url=http://127.0.0.1:9187/healthz",
		flags: func(fs *flag.FlagSet) func(context.Context, io.Writer, io.Writer) error {
			url := fs.String("url", "", "the `URL` to probe (default: $CDCD_HEALTHCHECK_URL, else http://127.0.0.1:9187/healthz)")
			return func(context.Context, io.Writer, io.Writer) error {
				u := *url
				if u == "" {
					u = os.Getenv("CDCD_HEALTHCHECK_URL")
				}
				if u == "" {
					u = "http://127.0.0.1:9187/healthz"
				}
				return healthcheck(u)
			}
		},
	},
	{
		name: "version", args: "",
		summary: "print the version, commit and build of this binary",
		help:    `Prints the module version, the commit it was built from (and its time), the Go version and the platform.`,
		example: "cdcd version",
		flags: func(fs *flag.FlagSet) func(context.Context, io.Writer, io.Writer) error {
			return func(_ context.Context, stdout, _ io.Writer) error {
				fmt.Fprintln(stdout, versionLine())
				return nil
			}
		},
	},
}

// usage is what cdcd --help prints.
func usage() string {
	var b strings.Builder
	b.WriteString("cdcd streams database changes into Kafka exactly once.\n\nUsage:\n  cdcd COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  cdcd %-14s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'cdcd COMMAND --help' for a command's flags and an example.\n" +
		"The configuration file comes from --config, else $CDCD_CONFIG.\n")
	return b.String()
}

func lookupCommand(args []string) (*command, []string) {
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			return c, args[len(words):]
		}
	}
	return nil, nil
}

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return &exitError{2, errUsageShown}
	}
	switch args[0] {
	case "--version", "-v":
		args = []string{"version"}
	case "help", "-h", "--help", "-help":
		if len(args) > 1 && args[0] == "help" {
			if c, _ := lookupCommand(args[1:]); c != nil {
				return runCmd(ctx, c, []string{"--help"}, stdout, stderr)
			}
		}
		fmt.Fprint(stdout, usage())
		return nil
	case "dlq":
		if len(args) < 2 || args[1] != "replay" {
			if len(args) >= 2 && (args[1] == "--help" || args[1] == "-h" || args[1] == "help") {
				fmt.Fprintln(stdout, "Usage: cdcd dlq replay --config FILE --pipeline NAME [--from OFFSET] [--class CLASS]\n\nRun 'cdcd dlq replay --help' for its flags and an example.")
				return nil
			}
			return usageError(stderr, "dlq", "the only dlq command is replay: cdcd dlq replay --config FILE --pipeline NAME")
		}
	}
	c, rest := lookupCommand(args)
	if c == nil {
		fmt.Fprintf(stderr, "cdcd: unknown command %q\n\n%s", args[0], usage())
		return &exitError{2, errUsageShown}
	}
	return runCmd(ctx, c, rest, stdout, stderr)
}

// versionLine describes the binary from its build information: the module version (or the
// one -X main.version stamped), the VCS commit and its time, the Go version and platform.
func versionLine() string {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(version, bi)
}

// describeBuild is versionLine for a stamped version and build information (nil: none).
func describeBuild(version string, bi *debug.BuildInfo) string {
	v := version
	var rev, at string
	modified := false
	if bi != nil {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	line := "cdcd " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified {
			rev += "-dirty"
		}
		line += " commit " + rev
		if at != "" {
			line += " (" + at + ")"
		}
	}
	return fmt.Sprintf("%s %s %s/%s", line, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// isTerminal reports whether f is a character device (a terminal, not a file or a pipe).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
