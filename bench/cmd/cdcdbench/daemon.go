package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemon is one `cdcd run` process.
type daemon struct {
	cmd     *exec.Cmd
	httpURL string
	logPath string
	logFile *os.File
	started time.Time
	exited  chan struct{}
	waitErr error
	hc      *http.Client
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startDaemon runs bin with the configuration; its output goes to logPath (appended).
func startDaemon(bin, cfgPath, httpAddr, logPath string, env []string) (*daemon, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "\n===== %s: %s run --config %s\n", time.Now().Format(time.RFC3339Nano), bin, cfgPath)
	d := &daemon{
		cmd:     exec.Command(bin, "run", "--config", cfgPath),
		httpURL: "http://" + httpAddr,
		logPath: logPath,
		logFile: f,
		exited:  make(chan struct{}),
		// No gzip: cheaper for cdcd to serve while it is being measured.
		hc: &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableCompression: true}},
	}
	d.cmd.Stdout, d.cmd.Stderr = f, f
	d.cmd.Env = append(os.Environ(), env...)
	d.started = time.Now()
	if err := d.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

func (d *daemon) alive() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// exitedErr describes an unexpected exit, with the end of the log.
func (d *daemon) exitedErr() error {
	return fmt.Errorf("cdcd exited unexpectedly (%v); last log lines:\n%s", d.waitErr, tail(d.logPath, 15))
}

// stop sends SIGTERM and waits up to timeout, then SIGKILL; it returns how long the exit took.
func (d *daemon) stop(timeout time.Duration) (time.Duration, error) {
	defer d.logFile.Close()
	if !d.alive() {
		return 0, nil
	}
	t0 := time.Now()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		took := time.Since(t0)
		var ee *exec.ExitError
		if errors.As(d.waitErr, &ee) {
			return took, fmt.Errorf("cdcd exited with %v after SIGTERM; last log lines:\n%s", d.waitErr, tail(d.logPath, 10))
		}
		return took, nil
	case <-time.After(timeout):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return time.Since(t0), fmt.Errorf("cdcd did not exit within %s of SIGTERM; killed", timeout)
	}
}

func (d *daemon) kill() {
	if d.alive() {
		_ = d.cmd.Process.Kill()
		select {
		case <-d.exited:
		case <-time.After(5 * time.Second):
		}
	}
}

// ready reports whether /readyz answers 200, and its body otherwise.
func (d *daemon) ready(ctx context.Context) (bool, string) {
	req, _ := http.NewRequestWithContext(ctx, "GET", d.httpURL+"/readyz", nil)
	resp, err := d.hc.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode == 200, strings.TrimSpace(string(b))
}

// waitReady polls /readyz until 200, the process exits, or timeout.
func (d *daemon) waitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		if !d.alive() {
			return 0, d.exitedErr()
		}
		ok, body := d.ready(ctx)
		if ok {
			return time.Since(d.started), nil
		}
		last = body
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("cdcd not ready within %s: /readyz said %q; last log lines:\n%s", timeout, last, tail(d.logPath, 10))
}

// scrape fetches /metrics.
func (d *daemon) scrape(ctx context.Context) (metricSet, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", d.httpURL+"/metrics", nil)
	resp, err := d.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// sample is one line of Prometheus text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

type metricSet []sample

func parseMetrics(r io.Reader) (metricSet, error) {
	var out metricSet
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		head := line[:sp]
		s := sample{value: v, labels: map[string]string{}}
		if i := strings.IndexByte(head, '{'); i >= 0 {
			s.name = head[:i]
			parseLabels(strings.TrimSuffix(head[i+1:], "}"), s.labels)
		} else {
			s.name = head
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseLabels(s string, into map[string]string) {
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return
		}
		k := s[:eq]
		s = s[eq+2:]
		var b strings.Builder
		i := 0
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(s[i])
				}
				continue
			}
			b.WriteByte(s[i])
		}
		into[k] = b.String()
		s = strings.TrimPrefix(s[min(i+1, len(s)):], ",")
	}
}

// sum adds the values of name whose labels include every match pair.
func (m metricSet) sum(name string, match map[string]string) float64 {
	var t float64
	for _, s := range m {
		if s.name == name && labelsMatch(s.labels, match) {
			t += s.value
		}
	}
	return t
}

func labelsMatch(l, match map[string]string) bool {
	for k, v := range match {
		if l[k] != v {
			return false
		}
	}
	return true
}

// histogram is a cumulative Prometheus histogram.
type histogram struct {
	bounds []float64 // upper bounds, ascending, +Inf last
	counts []float64 // cumulative
	sum    float64
	count  float64
}

func (m metricSet) histogram(name string, match map[string]string) histogram {
	byLE := map[float64]float64{}
	var h histogram
	for _, s := range m {
		switch {
		case s.name == name+"_bucket" && labelsMatch(s.labels, match):
			le, err := strconv.ParseFloat(s.labels["le"], 64)
			if err == nil {
				byLE[le] += s.value
			}
		case s.name == name+"_sum" && labelsMatch(s.labels, match):
			h.sum += s.value
		case s.name == name+"_count" && labelsMatch(s.labels, match):
			h.count += s.value
		}
	}
	for le := range byLE {
		h.bounds = append(h.bounds, le)
	}
	sort.Float64s(h.bounds)
	for _, le := range h.bounds {
		h.counts = append(h.counts, byLE[le])
	}
	return h
}

// sub is h - earlier (the observations in between); both must have the same buckets.
func (h histogram) sub(earlier histogram) histogram {
	out := histogram{bounds: h.bounds, sum: h.sum - earlier.sum, count: h.count - earlier.count}
	out.counts = make([]float64, len(h.counts))
	for i := range h.counts {
		out.counts[i] = h.counts[i]
		if i < len(earlier.counts) {
			out.counts[i] -= earlier.counts[i]
		}
	}
	return out
}

// quantile estimates like PromQL's histogram_quantile (linear inside a bucket).
func (h histogram) quantile(q float64) float64 {
	if len(h.counts) == 0 {
		return -1
	}
	total := h.counts[len(h.counts)-1]
	if total <= 0 {
		return -1
	}
	rank := q * total
	lower, prev := 0.0, 0.0
	for i, c := range h.counts {
		if c >= rank {
			up := h.bounds[i]
			if i == len(h.counts)-1 && len(h.bounds) > 1 { // +Inf bucket: the last finite bound
				return h.bounds[len(h.bounds)-2]
			}
			if c == prev {
				return up
			}
			return lower + (up-lower)*(rank-prev)/(c-prev)
		}
		lower, prev = h.bounds[i], c
	}
	return h.bounds[len(h.bounds)-1]
}

// over counts the observations above bound x (a bucket bound) and gives the upper bound of the
// highest bucket holding one: the longest observation is at most that (+Inf when it is in the
// +Inf bucket; 0 when there are none above x).
func (h histogram) over(x float64) (n, longest float64) {
	if len(h.counts) == 0 {
		return 0, 0
	}
	total := h.counts[len(h.counts)-1]
	at := 0.0
	for i, b := range h.bounds {
		if b <= x {
			at = h.counts[i]
		}
	}
	prev := 0.0
	for i, c := range h.counts {
		if c > prev && h.bounds[i] > x {
			longest = h.bounds[i]
		}
		prev = c
	}
	return total - at, longest
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
