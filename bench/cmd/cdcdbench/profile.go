package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profilingHook is compiled into a copy of cmd/cdcd with `go build -overlay` (the file is
// never written into the source tree). With CDCD_BENCH_PPROF=host:port it profiles the CPU
// from process start and serves net/http/pprof plus /bench/cpu/stop, which ends the CPU
// profile and returns it, and /bench/cpu/start, which starts the next one.
const profilingHook = `package main

import (
	"bytes"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime/pprof"
	"sync"
)

func init() {
	addr := os.Getenv("CDCD_BENCH_PPROF")
	if addr == "" {
		return
	}
	var (
		mu  sync.Mutex
		buf bytes.Buffer
		on  bool
	)
	if err := pprof.StartCPUProfile(&buf); err == nil {
		on = true
	}
	http.HandleFunc("/bench/cpu/start", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if on {
			http.Error(w, "a CPU profile is running", http.StatusConflict)
			return
		}
		buf.Reset()
		if err := pprof.StartCPUProfile(&buf); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		on = true
	})
	http.HandleFunc("/bench/cpu/stop", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !on {
			http.Error(w, "no CPU profile running", http.StatusConflict)
			return
		}
		pprof.StopCPUProfile()
		on = false
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(buf.Bytes())
	})
	go func() { log.Println(http.ListenAndServe(addr, nil)) }()
}
`

// buildProfilingBinary builds cmd/cdcd with the profiling hook added by an overlay.
func buildProfilingBinary(ctx context.Context, repo, workDir string) (string, func(), error) {
	root, err := filepath.Abs(repo)
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "cdcdbench-prof-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	hook := filepath.Join(dir, "zz_bench_pprof.go")
	if err := os.WriteFile(hook, []byte(profilingHook), 0o644); err != nil {
		cleanup()
		return "", nil, err
	}
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, "cmd", "cdcd", "zz_bench_pprof.go"): hook}})
	ovPath := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		cleanup()
		return "", nil, err
	}
	bin := filepath.Join(dir, "cdcd-prof")
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(bctx, "go", "build", "-trimpath", "-overlay", ovPath, "-ldflags", "-X main.version=bench-profile", "-o", bin, "./cmd/cdcd")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go build -overlay: %v\n%s", err, out)
	}
	return bin, cleanup, nil
}

// fetchTo saves an HTTP GET's body to path.
func fetchTo(ctx context.Context, url, path string, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(cctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pprofTop renders `go tool pprof -top` of a profile.
func pprofTop(ctx context.Context, profile string, args ...string) string {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	a := append([]string{"tool", "pprof", "-top", "-nodecount=30"}, args...)
	a = append(a, profile)
	out, err := exec.CommandContext(cctx, "go", a...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(go tool pprof failed: %v)\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// cdcdStacks keeps the goroutine groups of a debug=1 dump that run cdcd's own code.
func cdcdStacks(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var keep []string
	for _, g := range strings.Split(string(b), "\n\n") {
		if strings.Contains(g, "cdcd-dev/cdcd/") && !strings.Contains(g, "zz_bench_pprof") {
			keep = append(keep, strings.TrimSpace(g))
		}
	}
	return strings.Join(keep, "\n\n")
}

// traceView turns an execution trace into a pprof profile of one kind of waiting (sched: time
// runnable but not running; net: blocked on the network; sync: on channels and mutexes;
// syscall) and returns its top entries.
func traceView(ctx context.Context, trace, kind string) string {
	prof := trace + "." + kind + ".pprof"
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	f, err := os.Create(prof)
	if err != nil {
		return err.Error()
	}
	cmd := exec.CommandContext(cctx, "go", "tool", "trace", "-pprof="+kind, trace)
	cmd.Stdout = f
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	f.Close()
	if err != nil {
		return fmt.Sprintf("(go tool trace -pprof=%s failed: %v: %s)", kind, err, stderr.String())
	}
	return pprofTop(ctx, prof, "-cum", "-nodecount=25")
}
