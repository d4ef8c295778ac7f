package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one cdcd subcommand: what its --help prints, and its flags.
type command struct {
	name    string // as typed after cdcd: "run", "dlq replay"
	args    string // the synopsis after the name
	summary string // one line, for cdcd --help
	help    string // what it does, for cdcd NAME --help
	example string
	// flags defines the command's flags on fs and returns what runs once they are parsed.
	flags func(fs *flag.FlagSet) func(ctx context.Context, stdout, stderr io.Writer) error
}

// errHelpShown ends a command whose --help was printed: exit status 0.
var errHelpShown = &exitError{0, errUsageShown}

// usageError prints msg and a pointer to the command's --help, and exits 2.
func usageError(stderr io.Writer, name, msg string) error {
	fmt.Fprintf(stderr, "cdcd %s: %s\nRun 'cdcd %s --help' for usage.\n", name, msg, name)
	return &exitError{2, errUsageShown}
}

// runCmd parses args with c's flags (--help prints the help on stdout, exit 0; an unknown
// flag or an argument exits 2 naming it) and runs c.
func runCmd(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cdcd "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	run := c.flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout, c, fs)
			return errHelpShown
		}
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = "unknown flag --" + strings.TrimPrefix(name, "-")
		} else {
			// "flag needs an argument: -config", "invalid value ... for flag -from": the
			// flags are spelled with two dashes everywhere else.
			msg = strings.NewReplacer(": -", ": --", "flag -", "flag --").Replace(msg)
		}
		return usageError(stderr, c.name, msg)
	}
	if fs.NArg() > 0 {
		return usageError(stderr, c.name, fmt.Sprintf("unexpected arguments %v", fs.Args()))
	}
	return run(ctx, stdout, stderr)
}

// printHelp prints what c does, its flags and an example.
func printHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: cdcd %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.help))
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintln(w, "\nFlags:")
			first = false
		}
		arg, usage := flag.UnquoteUsage(f)
		if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool {
			arg = ""
		}
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		fmt.Fprintf(w, "%s\n      %s", line, usage)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
	fmt.Fprintf(w, "\nExample:\n  %s\n", strings.ReplaceAll(strings.TrimSpace(c.example), "\n", "\n  "))
}

// configFlag defines --config; the value defaults to $CDCD_CONFIG. The returned function
// gives the path, or a usage error when neither is set.
func configFlag(fs *flag.FlagSet) func(stderr io.Writer, name string) (string, error) {
	path := fs.String("config", "", "the configuration `FILE` (YAML); default: $CDCD_CONFIG")
	return func(stderr io.Writer, name string) (string, error) {
		if *path != "" {
			return *path, nil
		}
		if p := os.Getenv("CDCD_CONFIG"); p != "" {
			return p, nil
		}
		return "", usageError(stderr, name, "--config FILE is required (or set CDCD_CONFIG)")
	}
}

// requireFlag is the usage error of a missing required flag.
func requireFlag(stderr io.Writer, name, flag string) error {
	return usageError(stderr, name, flag+" is required")
}
