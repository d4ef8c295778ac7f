package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"testing"
)

// cdcd version describes the build from its build information: the module version when no
// -X main.version was stamped, the commit (marked -dirty when the tree was modified) and its
// time.
func TestDescribeBuild(t *testing.T) {
	tail := fmt.Sprintf(" %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "bc1a5dea780f1627003f0bbd9afc361b81f58814"},
		{Key: "vcs.time", Value: "2026-12-01T16:02:37Z"}, {Key: "vcs.modified", Value: "true"}}
	cases := []struct {
		name, version string
		bi            *debug.BuildInfo
		want          string
	}{
		{"go install of a release", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "cdcd v1.2.3"},
		{"a build in a clone", "dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			"cdcd dev commit bc1a5dea780f-dirty (2026-12-01T16:02:37Z)"},
		{"make build stamps the version", "v1.2.3-4-gbc1a5de", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs[:2]},
			"cdcd v1.2.3-4-gbc1a5de commit bc1a5dea780f (2026-12-01T16:02:37Z)"},
		{"no build information", "dev", nil, "cdcd dev"},
	}
	for _, c := range cases {
		if got := describeBuild(c.version, c.bi); got != c.want+tail {
			t.Errorf("%s: %q, want %q", c.name, got, c.want+tail)
		}
	}
}
