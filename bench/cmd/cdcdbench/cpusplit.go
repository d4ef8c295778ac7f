package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// cpuSplit says where the machine's CPU went while a phase ran: the measured tool, the
// broker, the databases, the harness itself (writer and counting consumer) and the rest. On
// two shared cores a throughput figure means little without it: a tool that is not busy
// itself may be waiting on a machine that is.
type cpuSplit struct {
	tool      int    // the measured process (its own group)
	toolLabel string // how the note names it
	self      int
	// each process when first seen (base) and at the last sample (last)
	base, last map[int]procSample
	group      map[int]string
	// the kernel's CPU pressure (PSI "some" total, µs): time during which at least one
	// runnable task waited for a CPU; -1 where the kernel does not report it
	psi0, psi1 int64
	// /proc/stat's jiffies at the start and at the last sample: busy, total, and the
	// hypervisor's steal (counted in busy)
	sysBusy0, sysTotal0, steal0 uint64
	sysBusy1, sysTotal1, steal1 uint64
}

// procSample is what the split reads of one process.
type procSample struct {
	cpu float64 // CPU seconds
	// seconds its threads spent runnable but waiting for a CPU (schedstat's run delay): on
	// two saturated cores, who was kept waiting, not only who ran
	wait float64
	// how many times its threads were put on a CPU: its wake-ups, each of which joins the
	// run queue
	wakes float64
}

// newCPUSplit takes the starting point: every process's CPU so far is not the phase's.
// fresh: the tool started within the phase, so all of its CPU counts.
func newCPUSplit(tool int, label string, fresh bool) *cpuSplit {
	c := &cpuSplit{tool: tool, toolLabel: label, self: os.Getpid(), base: map[int]procSample{}, last: map[int]procSample{}, group: map[int]string{}}
	c.sysBusy0, c.sysTotal0, c.steal0 = sysCPUStat()
	c.psi0 = cpuPressure()
	c.scan(true)
	if fresh {
		b := c.base[tool]
		b.cpu = 0
		c.base[tool] = b
	}
	return c
}

// processName is a process's command name ("?" once it is gone).
func processName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// sample reads every process again; one that appeared since the start counts from zero.
func (c *cpuSplit) sample() {
	c.scan(false)
	c.sysBusy1, c.sysTotal1, c.steal1 = sysCPUStat()
	c.psi1 = cpuPressure()
}

func (c *cpuSplit) scan(first bool) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		v, err := procCPU(pid)
		if err != nil {
			continue
		}
		wait, slices := procWait(pid)
		now := procSample{cpu: v, wait: wait, wakes: float64(slices)}
		if _, seen := c.base[pid]; !seen {
			if first {
				c.base[pid] = now
			} else {
				c.base[pid] = procSample{}
			}
			c.group[pid] = c.classify(pid)
		}
		// a thread that exited takes its delay and wake-ups with it: never let the sums go back
		prev := c.last[pid]
		now.wait, now.wakes = max(prev.wait, now.wait), max(prev.wakes, now.wakes)
		c.last[pid] = now
	}
}

// classify names the part of the stack a process belongs to.
func (c *cpuSplit) classify(pid int) string {
	switch pid {
	case c.tool:
		return c.toolLabel
	case c.self:
		return "harness (writer, consumer)"
	}
	return classifyProcess(processName(pid), func() []byte {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return b
	})
}

// classifyProcess groups a process by its command name and, for a JVM, its main class.
func classifyProcess(comm string, cmdline func() []byte) string {
	switch comm {
	case "postgres":
		// a walsender's title: "postgres: walsender <user> <host> START_REPLICATION"
		if bytes.Contains(cmdline(), []byte("walsender")) {
			return "PostgreSQL walsenders"
		}
		return "PostgreSQL"
	case "pg_recvlogical":
		return "PostgreSQL"
	case "mariadbd", "mysqld":
		return "MariaDB"
	case "java":
		cl := cmdline()
		switch {
		case bytes.Contains(cl, []byte("kafka.Kafka")):
			return "Kafka broker"
		case bytes.Contains(cl, []byte("ConnectStandalone")), bytes.Contains(cl, []byte("ConnectDistributed")):
			return "Kafka Connect"
		case bytes.Contains(cl, []byte("apicurio")), bytes.Contains(cl, []byte("quarkus")):
			return "schema registry"
		}
		return "other JVM"
	}
	return "other"
}

// cores returns each group's CPU seconds per second of the phase (secs long), largest
// first, and the machine's busy cores.
func (c *cpuSplit) cores(secs float64) (groups []groupCores, busy float64) {
	return c.perGroup(secs, func(p procSample) float64 { return p.cpu }), c.sysShare(c.sysBusy0, c.sysBusy1)
}

// sysShare is how many of the machine's cores a /proc/stat count grew by over the phase.
func (c *cpuSplit) sysShare(v0, v1 uint64) float64 {
	if c.sysTotal1 <= c.sysTotal0 || v1 < v0 {
		return 0
	}
	return float64(v1-v0) / float64(c.sysTotal1-c.sysTotal0) * float64(runtime.NumCPU())
}

// perGroup sums each process's growth of one figure (of) from the start to the last sample
// by group, per second of the phase, largest first.
func (c *cpuSplit) perGroup(secs float64, of func(procSample) float64) []groupCores {
	sum := map[string]float64{}
	for pid, v := range c.last {
		if d := of(v) - of(c.base[pid]); d > 0 {
			sum[c.group[pid]] += d
		}
	}
	var groups []groupCores
	for g, v := range sum {
		groups = append(groups, groupCores{g, v / secs})
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].cores > groups[j].cores })
	return groups
}

type groupCores struct {
	name  string
	cores float64
}

// machine is the split over a phase secs long.
func (c *cpuSplit) machine(secs float64) *machineCPU {
	groups, busy := c.cores(secs)
	m := &machineCPU{busy: busy, cores: runtime.NumCPU(), groups: groups, steal: c.sysShare(c.steal0, c.steal1),
		waits: c.perGroup(secs, func(p procSample) float64 { return p.wait }),
		wakes: c.perGroup(secs, func(p procSample) float64 { return p.wakes })}
	if c.psi0 >= 0 && c.psi1 >= c.psi0 && secs > 0 {
		m.pressure, m.hasPressure = float64(c.psi1-c.psi0)/1e6/secs, true
	}
	return m
}

// note is the split as the report prints it.
func (c *cpuSplit) note(secs float64) string {
	if secs <= 0 {
		return ""
	}
	return "machine CPU during the phase: " + c.machine(secs).String()
}

// machineCPU is a phase's split, kept for the targets: busy cores and each group's.
type machineCPU struct {
	busy   float64
	cores  int
	groups []groupCores
	// seconds per second each group's threads were runnable and waiting for a CPU
	waits []groupCores
	// times per second each group's threads were put on a CPU (in cores: wake-ups per second)
	wakes []groupCores
	// share of the phase during which some runnable task waited for a CPU, where the
	// kernel reports it (hasPressure)
	pressure    float64
	hasPressure bool
	// cores the hypervisor kept for something else (counted in busy, used by none of ours)
	steal float64
}

// saturated reports whether the machine had (nearly) no idle CPU left during the phase.
func (m *machineCPU) saturated() bool { return m != nil && m.busy >= 0.9*float64(m.cores) }

// String gives the split as "1.95 of 2 cores busy: cdcd 0.85, Kafka broker 0.55, ...".
func (m *machineCPU) String() string {
	out := fmt.Sprintf("%.2f of %d cores busy: %s", m.busy, m.cores, joinGroups(m.groups, 0.01, "%s %.2f"))
	if m.steal >= 0.01 {
		out += fmt.Sprintf("; of the busy cores the hypervisor took %.2f (steal)", m.steal)
	}
	if w := joinGroups(m.waits, 0.01, "%s %.2f"); w != "" {
		out += "; waiting for a CPU (s per s): " + w
	}
	if w := joinGroups(m.wakes, 10, "%s %.0f"); w != "" {
		out += "; put on a CPU (times per s): " + w
	}
	if m.hasPressure {
		out += fmt.Sprintf("; some task waited for a CPU %.0f %% of the time", 100*m.pressure)
	}
	return out
}

// joinGroups lists the groups whose figure is at least least, each formatted by format
// (name, figure), comma-separated.
func joinGroups(gs []groupCores, least float64, format string) string {
	var parts []string
	for _, g := range gs {
		if g.cores >= least {
			parts = append(parts, fmt.Sprintf(format, g.name, g.cores))
		}
	}
	return strings.Join(parts, ", ")
}

// waitOf is a group's time waiting for a CPU per second (0 if it is not in the split).
func (m *machineCPU) waitOf(group string) float64 {
	if m == nil {
		return 0
	}
	for _, g := range m.waits {
		if g.name == group {
			return g.cores
		}
	}
	return 0
}
