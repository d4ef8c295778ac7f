package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// clkTck is USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on every Linux
// architecture Go supports without cgo's sysconf).
const clkTck = 100

// procCPU is the process's user+system CPU time in seconds (all threads).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it start past the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return float64(ut+st) / clkTck, nil
}

// procWait is the time, in seconds, the process's live threads have spent runnable and
// waiting for a CPU, and how many times they were put on one (the second and third fields of
// /proc/<pid>/task/<tid>/schedstat); 0 where the kernel keeps no schedstats.
func procWait(pid int) (wait float64, slices uint64) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	var ns uint64
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		d, n := parseSchedstat(string(b))
		ns += d
		slices += n
	}
	return float64(ns) / 1e9, slices
}

// parseSchedstat reads the run delay (ns) and the number of slices run from a schedstat
// line: "<on cpu ns> <run delay ns> <slices>".
func parseSchedstat(s string) (delay, slices uint64) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return 0, 0
	}
	delay, _ = strconv.ParseUint(f[1], 10, 64)
	slices, _ = strconv.ParseUint(f[2], 10, 64)
	return delay, slices
}

// cpuPressure is the kernel's CPU pressure stall total ("some", µs), -1 if not reported.
func cpuPressure() int64 {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return -1
	}
	return parsePressureSome(string(b))
}

// parsePressureSome reads total= from the "some" line of a /proc/pressure file.
func parsePressureSome(s string) int64 {
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "some ") {
			continue
		}
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "total="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return -1
				}
				return n
			}
		}
	}
	return -1
}

// procStatusKB reads a "kB" line of /proc/<pid>/status, e.g. VmHWM or VmRSS.
func procStatusKB(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, key)
}

// sysCPU returns the machine's busy and total jiffies from /proc/stat.
func sysCPU() (busy, total uint64) {
	busy, total, _ = sysCPUStat()
	return busy, total
}

// sysCPUStat reads /proc/stat once: the machine's busy and total jiffies, and of them the
// hypervisor's steal (it ran something else while this machine's CPUs wanted to run: on a
// virtual machine, CPU that a phase's processes waited for without any of them using it).
func sysCPUStat() (busy, total, steal uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseCPULine(line)
}

// parseCPULine reads the "cpu" line of /proc/stat: busy jiffies (all but idle and iowait),
// the total of the first eight values (guest and guest_nice are already counted in user and
// nice) and steal (the eighth).
func parseCPULine(line string) (busy, total, steal uint64) {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, 0
	}
	for i, s := range f[1:min(len(f), 9)] {
		v, _ := strconv.ParseUint(s, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
		if i == 7 {
			steal = v
		}
	}
	return busy, total, steal
}

// findProcess returns the pid of the first process whose command line contains s, or 0.
func findProcess(s string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	self := os.Getpid()
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(s)) {
			return pid
		}
	}
	return 0
}

// cpuMeter measures a process's CPU seconds between start and the last successful read
// (a process that exits keeps its last reading).
type cpuMeter struct {
	pid         int
	first, last float64
	ok          bool
	acc         float64 // CPU of earlier processes (see switchTo)
}

// switchTo follows a restarted process: what the old one used is kept, the new one counts
// from zero.
func (m *cpuMeter) switchTo(pid int) {
	if m.ok {
		m.acc += m.last - m.first
	}
	m.pid = 0
	m.attachNew(pid)
}

// gone reports whether the measured process no longer exists.
func (m *cpuMeter) gone() bool {
	if m.pid <= 0 {
		return false
	}
	_, err := os.Stat(fmt.Sprintf("/proc/%d", m.pid))
	return err != nil
}

func (m *cpuMeter) attach(pid int) {
	if pid <= 0 || m.pid == pid {
		return
	}
	m.pid = pid
	if v, err := procCPU(pid); err == nil {
		m.first, m.last, m.ok = v, v, true
	}
}

// attachNew attaches to a process that started within the measured interval: all of its CPU
// time counts.
func (m *cpuMeter) attachNew(pid int) {
	if pid <= 0 || m.pid == pid {
		return
	}
	m.pid, m.first, m.ok = pid, 0, true
	m.read()
}

func (m *cpuMeter) read() {
	if m.pid <= 0 {
		return
	}
	if v, err := procCPU(m.pid); err == nil {
		if !m.ok {
			m.first, m.ok = v, true
		}
		m.last = v
	}
}

func (m *cpuMeter) used() float64 {
	if !m.ok {
		return -1
	}
	return m.acc + m.last - m.first
}

func numCPU() int { return runtime.NumCPU() }
