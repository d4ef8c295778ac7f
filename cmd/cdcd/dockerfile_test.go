package main

// Tests that keep the container image and the deployment examples honest without Docker or a
// cluster: the Dockerfile builds with exactly the Makefile's flags, those flags give a static
// binary, every YAML file under deploy/ parses, and the configurations the examples hand to
// cdcd pass `cdcd validate`'s checks with the environment and secrets the examples provide.

import (
	"bufio"
	"debug/elf"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/config"
	"go.yaml.in/yaml/v3"
)

const repoRoot = "../.."

// makeBuildFlags returns the words of the Makefile's GO_BUILD_FLAGS.
func makeBuildFlags(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	re := regexp.MustCompile(`^GO_BUILD_FLAGS\s*:?=\s*(.+)$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			return shellWords(t, m[1])
		}
	}
	t.Fatal("the Makefile defines no GO_BUILD_FLAGS")
	return nil
}

// dockerBuildLine returns the words of the Dockerfile's `go build` command, with
// ${VERSION} written as the Makefile writes it, $(VERSION).
func dockerBuildLine(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ") // line continuations
	var found []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(strings.ToUpper(line), "RUN ") || !strings.Contains(line, "go build") {
			continue
		}
		for _, cmd := range regexp.MustCompile(`&&|;`).Split(line[len("RUN "):], -1) {
			if strings.Contains(cmd, "go build") {
				if found != nil {
					t.Fatal("the Dockerfile runs go build more than once; keep one build line")
				}
				found = shellWords(t, regexp.MustCompile(`\$\{?VERSION\}?`).ReplaceAllString(cmd, "$$(VERSION)"))
			}
		}
	}
	if found == nil {
		t.Fatal("the Dockerfile has no RUN ... go build line")
	}
	return found
}

// shellWords splits a command line the way sh does for the simple quoting these files use.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func TestDockerfileBuildsWithTheMakefileFlags(t *testing.T) {
	mk := makeBuildFlags(t)
	dk := dockerBuildLine(t)
	if !slices.Contains(mk, "CGO_ENABLED=0") || !slices.Contains(mk, "-trimpath") {
		t.Errorf("GO_BUILD_FLAGS %q: want CGO_ENABLED=0 and -trimpath (a static, reproducible binary)", mk)
	}
	if len(dk) < len(mk) || !slices.Equal(dk[:len(mk)], mk) {
		t.Fatalf("the Dockerfile's build line\n  %q\ndoes not start with the Makefile's GO_BUILD_FLAGS\n  %q", dk, mk)
	}
	rest := dk[len(mk):]
	if len(rest) != 3 || rest[0] != "-o" || rest[2] != "./cmd/cdcd" {
		t.Errorf("after the flags the Dockerfile builds %q, want -o <path> ./cmd/cdcd", rest)
	}
}

func TestDockerfileImage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^FROM golang:1\.26\S* AS build$`),
		regexp.MustCompile(`(?m)^FROM gcr\.io/distroless/static-debian12:nonroot$`),
		regexp.MustCompile(`(?m)^COPY --from=build /out/cdcd /cdcd$`),
		regexp.MustCompile(`(?m)^USER nonroot$`),
		regexp.MustCompile(`(?m)^EXPOSE 9187$`),
		regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD \["/cdcd",\s*"healthcheck"\]$`),
		regexp.MustCompile(`(?m)^ENTRYPOINT \["/cdcd"\]$`),
		regexp.MustCompile(`(?m)^CMD \["run",\s*"--config",\s*"/etc/cdcd/config.yaml"\]$`),
	} {
		if !want.MatchString(df) {
			t.Errorf("the Dockerfile has no line matching %s", want)
		}
	}
}

// TestDockerignoreKeepsTheBuildInputs: the image builds cdcd from the build context, so
// .dockerignore must not leave out go.mod, go.sum or a package cdcd imports.
func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Skipf(".dockerignore uses exceptions (%s); this check does not model them", line)
		}
		patterns = append(patterns, strings.Trim(line, "/"))
	}
	// excluded reports whether a pattern matches path or one of its parent directories.
	excluded := func(path string) string {
		parts := strings.Split(path, "/")
		for i := range parts {
			prefix := strings.Join(parts[:i+1], "/")
			for _, p := range patterns {
				if ok, _ := filepath.Match(p, prefix); ok {
					return p
				}
				if rest, ok := strings.CutPrefix(p, "**/"); ok {
					if ok, _ := filepath.Match(rest, parts[i]); ok {
						return p
					}
				}
			}
		}
		return ""
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}} {{.Dir}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		_, dir, _ := strings.Cut(line, " ")
		if rel, err := filepath.Rel(root, dir); err == nil && !strings.HasPrefix(rel, "..") {
			inputs = append(inputs, filepath.ToSlash(rel))
		}
	}
	for _, in := range inputs {
		if p := excluded(in); p != "" {
			t.Errorf(".dockerignore pattern %q leaves %s out of the build context", p, in)
		}
	}
}

// TestBuildFlagsMakeAStaticBinary builds cdcd for Linux with the Makefile's GO_BUILD_FLAGS
// and checks the ELF file asks for no dynamic loader: it must run on distroless/static.
func TestBuildFlagsMakeAStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cdcd; skipped with -short")
	}
	words := makeBuildFlags(t)
	var env []string
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		env = append(env, words[0])
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		t.Fatalf("GO_BUILD_FLAGS is not [VAR=value...] go build ...: %q", words)
	}
	const version = "v0.0.0-static"
	args := make([]string, 0, len(words)+2)
	for _, w := range words[1:] {
		args = append(args, strings.ReplaceAll(w, "$(VERSION)", version))
	}
	bin := filepath.Join(t.TempDir(), "cdcd")
	args = append(args, "-o", bin, ".")
	cmd := exec.Command("go", args...)
	cmd.Env = append(append(os.Environ(), env...), "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			t.Error("the binary has a PT_INTERP program header: it needs a dynamic loader (is cgo on?)")
		case elf.PT_DYNAMIC:
			t.Error("the binary has a PT_DYNAMIC program header: it is dynamically linked")
		}
	}
	if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
		t.Error("the binary has a .dynamic or .interp section")
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		t.Errorf("the binary imports shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table: -s -w should strip it")
	}

	if runtime.GOOS == "linux" {
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatalf("running the static binary: %v", err)
		}
		if !strings.HasPrefix(string(out), "cdcd "+version+" ") {
			t.Errorf("version printed %q, want the stamped %s", out, version)
		}
	}
}

// deployYAMLFiles lists every YAML file under deploy/.
func deployYAMLFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(repoRoot, "deploy"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no YAML files under deploy/")
	}
	return files
}

// yamlDocs decodes every document of a (multi-document) YAML file.
func yamlDocs(path string) ([]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var docs []map[string]any
	dec := yaml.NewDecoder(f)
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

func TestDeployYAMLParses(t *testing.T) {
	for _, path := range deployYAMLFiles(t) {
		if _, err := yamlDocs(path); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

// composeDefault expands docker compose's ${VAR:-default} to its default.
var composeDefault = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}`)

// TestComposeConfigValidates: the compose example mounts config.example.yaml and sets its
// variables; with those, the configuration must be valid and listen beyond loopback.
func TestComposeConfigValidates(t *testing.T) {
	docs, err := yamlDocs(filepath.Join(repoRoot, "deploy", "docker-compose.yaml"))
	if err != nil || len(docs) != 1 {
		t.Fatalf("docker-compose.yaml: %v (%d documents)", err, len(docs))
	}
	var compose struct {
		Services map[string]struct {
			Volumes     []string          `yaml:"volumes"`
			Environment map[string]string `yaml:"environment"`
			Command     []string          `yaml:"command"`
		} `yaml:"services"`
	}
	remarshal(t, docs[0], &compose)
	svc, ok := compose.Services["cdcd"]
	if !ok {
		t.Fatal("docker-compose.yaml has no cdcd service")
	}
	mount := ""
	for _, v := range svc.Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == "/etc/cdcd/config.yaml" {
			mount = parts[0]
		}
	}
	if mount == "" {
		t.Fatal("the cdcd service mounts nothing at /etc/cdcd/config.yaml")
	}
	env := map[string]string{}
	for k, v := range svc.Environment {
		env[k] = composeDefault.ReplaceAllString(v, "$1")
	}
	path := filepath.Join(repoRoot, "deploy", mount)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, data, lookupIn(env))
	if err != nil {
		t.Fatalf("the compose example's configuration is invalid:\n%v", err)
	}
	if cfg.HTTP.Listen != "0.0.0.0:9187" {
		t.Errorf("http.listen is %q in the container, want 0.0.0.0:9187", cfg.HTTP.Listen)
	}
}

// TestKubernetesConfigValidates: the ConfigMap's configuration, with the Deployment's
// environment and the Secret's files where the Deployment mounts them, must be valid, and the
// probes must hit the port cdcd listens on.
// kubeObjects decodes every object of the YAML files in dir, by kind and name.
func kubeObjects(t *testing.T, dir string) map[string]map[string]kubeObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no files in %s: %v", dir, err)
	}
	byKind := map[string]map[string]kubeObject{}
	for _, path := range files {
		docs, err := yamlDocs(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, d := range docs {
			var o kubeObject
			remarshal(t, d, &o)
			if byKind[o.Kind] == nil {
				byKind[o.Kind] = map[string]kubeObject{}
			}
			byKind[o.Kind][o.Metadata.Name] = o
		}
	}
	return byKind
}

// checkWorkload validates the configuration a Deployment or StatefulSet gives cdcd: its
// ConfigMap with its environment and mounted secrets (from byKind, or from more), the listen
// address, the port and the probes. It returns the configuration.
func checkWorkload(t *testing.T, byKind map[string]map[string]kubeObject, kind, name string, more ...map[string]map[string]kubeObject) *config.Config {
	t.Helper()
	find := func(kind, name string) (kubeObject, bool) {
		for _, m := range append([]map[string]map[string]kubeObject{byKind}, more...) {
			if o, ok := m[kind][name]; ok {
				return o, true
			}
		}
		return kubeObject{}, false
	}
	dep, ok := byKind[kind][name]
	if !ok || len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("no %s %s with one container", kind, name)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}

	// Where each volume is mounted, and what it holds.
	secretDir := t.TempDir()
	var configText string
	var rewrites []string // old, new pairs for ${file:...} paths
	for _, v := range dep.Spec.Template.Spec.Volumes {
		mountPath := ""
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name {
				mountPath = m.MountPath
			}
		}
		switch {
		case v.ConfigMap != nil:
			cm, ok := find("ConfigMap", v.ConfigMap.Name)
			if !ok {
				t.Fatalf("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
			}
			if mountPath == "/etc/cdcd" {
				configText = cm.Data["config.yaml"]
			}
		case v.Secret != nil:
			s, ok := find("Secret", v.Secret.SecretName)
			if !ok {
				t.Fatalf("volume %s: no Secret %s", v.Name, v.Secret.SecretName)
			}
			dir := filepath.Join(secretDir, v.Name)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			for k, val := range s.StringData {
				if err := os.WriteFile(filepath.Join(dir, k), []byte(val), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			rewrites = append(rewrites, "${file:"+mountPath+"/", "${file:"+dir+"/")
		}
	}
	if configText == "" {
		t.Fatal("no ConfigMap with config.yaml is mounted at /etc/cdcd")
	}
	configText = strings.NewReplacer(rewrites...).Replace(configText)
	cfg, err := config.Parse("configmap.yaml:config.yaml", []byte(configText), lookupIn(env))
	if err != nil {
		t.Fatalf("the ConfigMap's configuration is invalid with the %s's environment and secrets:\n%v", kind, err)
	}
	if cfg.HTTP.Listen != "0.0.0.0:9187" {
		t.Errorf("http.listen is %q in the pod, want 0.0.0.0:9187", cfg.HTTP.Listen)
	}
	if !slices.ContainsFunc(c.Ports, func(p kubePort) bool { return p.ContainerPort == 9187 }) {
		t.Error("the container does not declare port 9187")
	}
	for name, probe := range map[string]map[string]any{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[name]
		get, _ := probe["httpGet"].(map[string]any)
		if get == nil || get["path"] != want {
			t.Errorf("%s probe: %v, want an httpGet of %s", name, probe, want)
		}
	}
	return cfg
}

type kubePort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type kubeObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas       *int           `yaml:"replicas"`
		ServiceName    string         `yaml:"serviceName"`
		Selector       map[string]any `yaml:"selector"` // a Service's labels, or {matchLabels: ...}
		MaxUnavailable any            `yaml:"maxUnavailable"`
		Endpoints      []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"endpoints"`
		Ports []struct {
			Name string `yaml:"name"`
		} `yaml:"ports"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []kubeContainer `yaml:"containers"`
				Volumes    []struct {
					Name   string `yaml:"name"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type kubeContainer struct {
	Env []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	Ports          []kubePort     `yaml:"ports"`
	LivenessProbe  map[string]any `yaml:"livenessProbe"`
	ReadinessProbe map[string]any `yaml:"readinessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

// matchLabels is the labels a selector requires: a Service's selector is the map itself,
// other objects' is its matchLabels.
func matchLabels(sel map[string]any) map[string]string {
	if ml, ok := sel["matchLabels"].(map[string]any); ok {
		sel = ml
	}
	out := map[string]string{}
	for k, v := range sel {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// selects reports whether a selector's labels all appear in labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestKubernetesConfigValidates(t *testing.T) {
	byKind := kubeObjects(t, filepath.Join(repoRoot, "deploy", "kubernetes"))
	checkWorkload(t, byKind, "Deployment", "cdcd")
	if _, ok := byKind["Service"]["cdcd"]; !ok {
		t.Error("deploy/kubernetes has no Service cdcd for the metrics port")
	}
	// The Prometheus Operator's ServiceMonitor scrapes the Service's metrics port.
	sm, ok := byKind["ServiceMonitor"]["cdcd"]
	if !ok {
		t.Fatal("deploy/kubernetes has no ServiceMonitor cdcd")
	}
	if !selects(matchLabels(sm.Spec.Selector), byKind["Service"]["cdcd"].Metadata.Labels) ||
		len(sm.Spec.Endpoints) == 0 || sm.Spec.Endpoints[0].Port != "metrics" {
		t.Errorf("the ServiceMonitor does not scrape the Service cdcd's port metrics: %+v", sm.Spec)
	}
}

// Window jobs run as a StatefulSet: several instances share a job's partitions, each with a
// stable instance id (its pod name, the default instance_id), and a PodDisruptionBudget keeps
// a voluntary disruption from taking more than one at a time.
func TestKubernetesWindowJobsStatefulSet(t *testing.T) {
	parent := kubeObjects(t, filepath.Join(repoRoot, "deploy", "kubernetes"))
	byKind := kubeObjects(t, filepath.Join(repoRoot, "deploy", "kubernetes", "window-jobs"))
	cfg := checkWorkload(t, byKind, "StatefulSet", "cdcd-windows", parent)
	if len(cfg.Windows) == 0 {
		t.Fatal("the StatefulSet's configuration has no window job")
	}
	for _, w := range cfg.Windows {
		if w.InstanceID != "" {
			t.Errorf("window job %s sets instance_id %q: every replica would share it; leave it to the pod name (the hostname)", w.Name, w.InstanceID)
		}
	}
	st := byKind["StatefulSet"]["cdcd-windows"]
	if st.Spec.Replicas == nil || *st.Spec.Replicas < 2 {
		t.Errorf("replicas %v: run at least two instances", st.Spec.Replicas)
	}
	svc, ok := byKind["Service"][st.Spec.ServiceName]
	if !ok || !selects(matchLabels(svc.Spec.Selector), st.Spec.Template.Metadata.Labels) {
		t.Errorf("no Service %q selecting the StatefulSet's pods", st.Spec.ServiceName)
	}
	pdb, ok := byKind["PodDisruptionBudget"]["cdcd-windows"]
	if !ok || !selects(matchLabels(pdb.Spec.Selector), st.Spec.Template.Metadata.Labels) || pdb.Spec.MaxUnavailable == nil {
		t.Errorf("no PodDisruptionBudget cdcd-windows with maxUnavailable selecting the pods: %+v", pdb.Spec)
	}
	sm, ok := parent["ServiceMonitor"]["cdcd"]
	if !ok || !selects(matchLabels(sm.Spec.Selector), svc.Metadata.Labels) {
		t.Errorf("the ServiceMonitor cdcd does not select the Service %s (labels %v)", svc.Metadata.Name, svc.Metadata.Labels)
	}
}

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// remarshal converts a generic YAML document into a typed view of it.
func remarshal(t *testing.T, in any, out any) {
	t.Helper()
	b, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}
