// Package docs holds cdcd's reference documentation; its test checks the links.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// The documents whose links must resolve: the front page, the contributor guide, the reference.
func documents(t *testing.T) []string {
	t.Helper()
	files := []string{"../README.md", "../CONTRIBUTING.md"}
	more, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(more) == 0 {
		t.Fatal("no docs/*.md")
	}
	return append(files, more...)
}

var (
	linkRE  = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	codeRE  = regexp.MustCompile("`[^`]*`")
	headRE  = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	fenceRE = regexp.MustCompile("^\\s*(```|~~~)")
)

// prose returns the document's lines outside code fences, with inline code removed.
func prose(text string) []string {
	var out []string
	fence := false
	for _, l := range strings.Split(text, "\n") {
		if fenceRE.MatchString(l) {
			fence = !fence
			out = append(out, "")
			continue
		}
		if fence {
			out = append(out, "")
			continue
		}
		out = append(out, codeRE.ReplaceAllString(l, "code"))
	}
	return out
}

// anchors are the heading ids GitHub gives a Markdown file: lower case, punctuation removed,
// spaces to hyphens, a repeated id suffixed -1, -2, ...
func anchors(text string) map[string]bool {
	ids := map[string]bool{}
	seen := map[string]int{}
	fence := false
	for _, l := range strings.Split(text, "\n") {
		if fenceRE.MatchString(l) {
			fence = !fence
			continue
		}
		m := headRE.FindStringSubmatch(l)
		if fence || m == nil {
			continue
		}
		id := slug(m[2])
		if n := seen[id]; n > 0 {
			ids[id+"-"+itoa(n)] = true
		} else {
			ids[id] = true
		}
		seen[id]++
	}
	return ids
}

func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func itoa(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

func TestSlug(t *testing.T) {
	for h, want := range map[string]string{
		"Type mapping (PostgreSQL -> Avro)":                 "type-mapping-postgresql---avro",
		"Endpoints (`http.listen`, default 127.0.0.1:9187)": "endpoints-httplisten-default-1270019187",
		"MySQL and MariaDB":                                 "mysql-and-mariadb",
	} {
		if got := slug(strings.ReplaceAll(h, "`", "")); got != want {
			t.Errorf("slug(%q) = %q, want %q", h, got, want)
		}
	}
}

// checkTarget reports whether target (a link written in the file from) resolves.
func checkTarget(t *testing.T, from, target string) string {
	file, frag, _ := strings.Cut(target, "#")
	path := from
	if file != "" {
		path = filepath.Join(filepath.Dir(from), file)
		if _, err := os.Stat(path); err != nil {
			return "no such file " + path
		}
	}
	if frag == "" {
		return ""
	}
	if !strings.HasSuffix(path, ".md") {
		return "an #anchor into a file that is not Markdown"
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if !anchors(string(text))[frag] {
		return "no heading #" + frag + " in " + path
	}
	return ""
}

// Every relative link (a file, and a heading in it) in README.md, CONTRIBUTING.md and
// docs/*.md resolves.
func TestRelativeLinksResolve(t *testing.T) {
	n := 0
	for _, doc := range documents(t) {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range prose(string(text)) {
			for _, m := range linkRE.FindAllStringSubmatch(l, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				n++
				if msg := checkTarget(t, doc, target); msg != "" {
					t.Errorf("%s:%d: link %s: %s", doc, i+1, target, msg)
				}
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d relative links found: the link pattern misses some", n)
	}
}

// The alerts' runbook_urls point at headings of docs/troubleshooting.md that exist.
func TestRunbookURLsResolve(t *testing.T) {
	files, _ := filepath.Glob("../deploy/prometheus/alerts*.yaml")
	re := regexp.MustCompile(`runbook_url:\s*"?([^"\s]+)`)
	const base = "https://github.com/cdcd-dev/cdcd/blob/main/"
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.yaml") {
			continue
		}
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		alerts := strings.Count(string(text), "- alert:")
		urls := re.FindAllStringSubmatch(string(text), -1)
		if len(urls) != alerts {
			t.Errorf("%s: %d alerts, %d runbook_urls: give every alert one", f, alerts, len(urls))
		}
		for _, m := range urls {
			n++
			rel, ok := strings.CutPrefix(m[1], base)
			if !ok {
				t.Errorf("%s: runbook_url %s is not under %s", f, m[1], base)
				continue
			}
			if msg := checkTarget(t, "../README.md", rel); msg != "" {
				t.Errorf("%s: runbook_url %s: %s", f, m[1], msg)
			}
		}
	}
	if n == 0 {
		t.Error("no runbook_url in deploy/prometheus/alerts*.yaml")
	}
}
