// Package docs holds swarmguard's reference documents; its test checks that every relative link in them
// and in the README leads to a file that exists and, with a #fragment, to a heading of that file.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// documents are the files whose links are checked, relative to this directory.
func documents(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 10 {
		t.Fatalf("found %d documents in docs/ (%v); the reference is split by topic here", len(docs), docs)
	}
	return append([]string{"../README.md", "../integration/lab/README.md"}, docs...)
}

func TestRelativeLinksResolve(t *testing.T) {
	for _, doc := range documents(t) {
		for _, problem := range brokenLinks(t, doc) {
			t.Errorf("%s: %s", doc, problem)
		}
	}
}

// The README reaches every document of docs/, so none is an orphan a newcomer cannot find.
func TestReadmeLinksEveryDocument(t *testing.T) {
	readme := links(t, "../README.md")
	linked := map[string]bool{}
	for _, l := range readme {
		path, _, _ := strings.Cut(l, "#")
		linked[filepath.Clean(filepath.Join("..", path))] = true
	}
	docs, _ := filepath.Glob("*.md")
	for _, d := range docs {
		if d != "README.md" && !linked[filepath.Join("..", "docs", d)] {
			t.Errorf("README.md links no docs/%s", d)
		}
	}
}

// The checker itself finds a missing file, a missing heading and a heading that exists.
func TestBrokenLinksFindsProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("b.md", "# B\n\n## Deployment, step by step\n\n## `swarmguard plan [--domain D]... [--format table|json]`\n\n## Metrics\n\n## Metrics\n")
	a := write("a.md", "# A\n\n[ok](b.md#deployment-step-by-step) [ok](b.md#swarmguard-plan---domain-d---format-tablejson)\n"+
		"[ok](b.md#metrics-1) [ok](#a) [web](https://example.com/x.md)\n`[code](nowhere.md)`\n```\n[fenced](nowhere.md)\n```\n"+
		"[gone](c.md) [no heading](b.md#nope) [self](#nope-here)\n")
	got := brokenLinks(t, a)
	want := []string{`link "c.md": no file`, `link "b.md#nope": no heading`, `link "#nope-here": no heading`}
	if len(got) != len(want) {
		t.Fatalf("brokenLinks = %q; want %d problems like %q", got, len(want), want)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("problem %d = %q; want it to start with %q", i, got[i], w)
		}
	}
}

func TestAnchor(t *testing.T) {
	for in, want := range map[string]string{
		"What the controller changes without `enforce`":            "what-the-controller-changes-without-enforce",
		"`swarmguard report certs [--format table|json]` and more": "swarmguard-report-certs---format-tablejson-and-more",
		"Endpoints (listen, default `:9323`; empty serves none)":   "endpoints-listen-default-9323-empty-serves-none",
		"Workloads: the defence-in-depth layers of every service":  "workloads-the-defence-in-depth-layers-of-every-service",
		"Secrets from [Vault](https://vaultproject.io)":            "secrets-from-vault",
	} {
		if got := anchor(in); got != want {
			t.Errorf("anchor(%q) = %q; want %q", in, got, want)
		}
	}
}

var (
	linkRe       = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	inlineCodeRe = regexp.MustCompile("`[^`]*`")
	headingRe    = regexp.MustCompile(`^#{1,6} (.*)$`)
	mdLinkRe     = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// links are the link targets of a Markdown file, outside code blocks and inline code.
func links(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	for _, line := range prose(t, path) {
		for _, m := range linkRe.FindAllStringSubmatch(inlineCodeRe.ReplaceAllString(line, ""), -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// prose is a Markdown file's lines outside fenced code blocks.
func prose(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	var out []string
	fence := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
			continue
		}
		if !fence {
			out = append(out, line)
		}
	}
	return out
}

// anchors are the fragments GitHub gives a file's headings: the heading's text in lower case, without
// punctuation, spaces as hyphens; a repeated one gets -1, -2, ...
func anchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	seen := map[string]int{}
	for _, line := range prose(t, path) {
		m := headingRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a := anchor(m[1])
		if n := seen[a]; n > 0 {
			out[a+"-"+itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

func anchor(heading string) string {
	text := mdLinkRe.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// brokenLinks checks each relative link of the file at path: its file exists, and its fragment names a
// heading of that file (of the file itself for a bare #fragment). Web and mail links are not followed.
func brokenLinks(t *testing.T, path string) []string {
	t.Helper()
	var problems []string
	for _, l := range links(t, path) {
		if strings.Contains(l, "://") || strings.HasPrefix(l, "mailto:") {
			continue
		}
		target, frag, _ := strings.Cut(l, "#")
		file := path
		if target != "" {
			file = filepath.Join(filepath.Dir(path), target)
			if _, err := os.Stat(file); err != nil {
				problems = append(problems, "link \""+l+"\": no file "+file)
				continue
			}
		}
		if frag == "" {
			continue
		}
		if !strings.HasSuffix(file, ".md") {
			problems = append(problems, "link \""+l+"\": a fragment into a file that is not Markdown")
			continue
		}
		if !anchors(t, file)[frag] {
			problems = append(problems, "link \""+l+"\": no heading #"+frag+" in "+file)
		}
	}
	return problems
}
