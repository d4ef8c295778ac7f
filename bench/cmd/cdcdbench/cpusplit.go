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
	sysBusy0  uint64
	sysTotal0 uint64
	sysBusy1  uint64
	sysTotal1 uint64
}

// newCPUSplit takes the starting point: every process's CPU so far is not the phase's.
// fresh: the tool started within the phase, so all of its CPU counts.
func newCPUSplit(tool int, label string, fresh bool) *cpuSplit {
	c := &cpuSplit{tool: tool, toolLabel: label, self: os.Getpid(), base: map[int]float64{}, last: map[int]float64{}, group: map[int]string{}}
	c.sysBusy0, c.sysTotal0 = sysCPU()
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
		if _, seen := c.base[pid]; !seen {
			if first {
				c.base[pid] = v
			} else {
				c.base[pid] = 0
			}
			c.group[pid] = c.classify(pid)
		}
		c.last[pid] = v
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
	case "postgres", "pg_recvlogical":
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
	sum := map[string]float64{}
	for pid, v := range c.last {
		if d := v - c.base[pid]; d > 0 {
			sum[c.group[pid]] += d
		}
	}
	for g, v := range sum {
		groups = append(groups, groupCores{g, v / secs})
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].cores > groups[j].cores })
	if dt := c.sysTotal1 - c.sysTotal0; c.sysTotal1 > c.sysTotal0 && dt > 0 {
		busy = float64(c.sysBusy1-c.sysBusy0) / float64(dt) * float64(runtime.NumCPU())
	}
	return groups, busy
}

type groupCores struct {
	name  string
	cores float64
}

// machine is the split over a phase secs long.
func (c *cpuSplit) machine(secs float64) *machineCPU {
	groups, busy := c.cores(secs)
	return &machineCPU{busy: busy, cores: runtime.NumCPU(), groups: groups}
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
}

// saturated reports whether the machine had (nearly) no idle CPU left during the phase.
func (m *machineCPU) saturated() bool { return m != nil && m.busy >= 0.9*float64(m.cores) }

// String gives the split as "1.95 of 2 cores busy: cdcd 0.85, Kafka broker 0.55, ...".
func (m *machineCPU) String() string {
	var parts []string
	for _, g := range m.groups {
		if g.cores >= 0.01 {
			parts = append(parts, fmt.Sprintf("%s %.2f", g.name, g.cores))
		}
	}
	return fmt.Sprintf("%.2f of %d cores busy: %s", m.busy, m.cores, strings.Join(parts, ", "))
}
