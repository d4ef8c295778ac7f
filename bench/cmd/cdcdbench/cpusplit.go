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
	base      map[int]float64 // CPU seconds of each process when first seen
	last      map[int]float64
	group     map[int]string
	// seconds each process's threads spent runnable but waiting for a CPU (schedstat's
	// run delay): on two saturated cores, who was kept waiting, not only who ran
	waitBase map[int]float64
	waitLast map[int]float64
	// how many times each process's threads were put on a CPU: its wake-ups, each of which
	// joins the run queue
	wakeBase map[int]float64
	wakeLast map[int]float64
	// the kernel's CPU pressure (PSI "some" total, µs): time during which at least one
	// runnable task waited for a CPU; -1 where the kernel does not report it
	psi0, psi1 int64
	// the hypervisor's steal over the phase (jiffies), and the total it is a share of
	steal0, stealTotal0, steal1, stealTotal1 uint64
	sysBusy0                                 uint64
	sysTotal0                                uint64
	sysBusy1                                 uint64
	sysTotal1                                uint64
}

// newCPUSplit takes the starting point: every process's CPU so far is not the phase's.
// fresh: the tool started within the phase, so all of its CPU counts.
func newCPUSplit(tool int, label string, fresh bool) *cpuSplit {
	c := &cpuSplit{tool: tool, toolLabel: label, self: os.Getpid(), base: map[int]float64{}, last: map[int]float64{}, group: map[int]string{},
		waitBase: map[int]float64{}, waitLast: map[int]float64{}, wakeBase: map[int]float64{}, wakeLast: map[int]float64{}}
	c.sysBusy0, c.sysTotal0 = sysCPU()
	c.psi0 = cpuPressure()
	c.steal0, c.stealTotal0 = sysSteal()
	c.scan(true)
	if fresh {
		c.base[tool] = 0
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
	c.sysBusy1, c.sysTotal1 = sysCPU()
	c.psi1 = cpuPressure()
	c.steal1, c.stealTotal1 = sysSteal()
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
		wakes := float64(slices)
		if _, seen := c.base[pid]; !seen {
			if first {
				c.base[pid], c.waitBase[pid], c.wakeBase[pid] = v, wait, wakes
			} else {
				c.base[pid], c.waitBase[pid], c.wakeBase[pid] = 0, 0, 0
			}
			c.group[pid] = c.classify(pid)
		}
		c.last[pid] = v
		// a thread that exited takes its delay with it: never let the sum go back
		c.waitLast[pid] = max(c.waitLast[pid], wait)
		c.wakeLast[pid] = max(c.wakeLast[pid], wakes)
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

// waits returns each group's time waiting for a CPU per second of the phase (secs long),
// largest first, and the share of the phase during which some task waited (-1: unknown).
func (c *cpuSplit) waits(secs float64) (groups []groupCores, pressure float64) {
	pressure = -1
	if c.psi0 >= 0 && c.psi1 >= c.psi0 && secs > 0 {
		pressure = float64(c.psi1-c.psi0) / 1e6 / secs
	}
	return c.perGroup(c.waitBase, c.waitLast, secs), pressure
}

// cores returns each group's CPU seconds per second of the phase (secs long), largest
// first, and the machine's busy cores.
func (c *cpuSplit) cores(secs float64) (groups []groupCores, busy float64) {
	if dt := c.sysTotal1 - c.sysTotal0; c.sysTotal1 > c.sysTotal0 && dt > 0 {
		busy = float64(c.sysBusy1-c.sysBusy0) / float64(dt) * float64(runtime.NumCPU())
	}
	return c.perGroup(c.base, c.last, secs), busy
}

// perGroup sums each process's growth from base to last by group, per second of the phase,
// largest first.
func (c *cpuSplit) perGroup(base, last map[int]float64, secs float64) []groupCores {
	sum := map[string]float64{}
	for pid, v := range last {
		if d := v - base[pid]; d > 0 {
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
	waits, pressure := c.waits(secs)
	m := &machineCPU{busy: busy, cores: runtime.NumCPU(), groups: groups, waits: waits, pressure: pressure, hasPressure: pressure >= 0,
		wakes: c.perGroup(c.wakeBase, c.wakeLast, secs)}
	if dt := c.stealTotal1 - c.stealTotal0; c.stealTotal1 > c.stealTotal0 && c.steal1 >= c.steal0 {
		m.steal = float64(c.steal1-c.steal0) / float64(dt) * float64(m.cores)
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
