package config

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Problem is one thing wrong with the configuration, tied to its key's full path.
type Problem struct {
	Key string
	Msg string
}

func (p Problem) String() string { return p.Key + ": " + p.Msg }

// Problems is every problem found; as an error it prints one line per problem.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Sorted returns the problems ordered by key, for stable output.
func (ps Problems) Sorted() Problems {
	out := append(Problems(nil), ps...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

var durationType = reflect.TypeOf(Duration(0))

// elemDefaults gives list elements their defaults before the file's values are laid over them.
var elemDefaults = map[reflect.Type]func() any{
	reflect.TypeOf(SecretMapping{}): func() any { return DefaultSecretMapping() },
	reflect.TypeOf(Webhook{}):       func() any { return DefaultWebhook() },
}

// DecodeConfig lays raw (the merged settings: nested maps of scalars and lists, as YAML and viper produce them)
// over base, strictly: an unknown key, or a value of the wrong type, is a problem naming its full key path.
// It decodes everything it can and reports every problem, not just the first.
func DecodeConfig(base Config, raw map[string]any) (Config, Problems) {
	cfg := base
	var probs Problems
	decodeStruct("", raw, reflect.ValueOf(&cfg).Elem(), &probs)
	return cfg, probs
}

// join appends key to path. A key that would not read as one (empty, or with spaces, quotes or control
// characters, which could also break config check's one-line-per-problem output) is quoted.
func join(path, key string) string {
	if key == "" || strings.ContainsFunc(key, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) || r == '"' }) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func fieldsByKey(t reflect.Type) (map[string]int, []string) {
	idx := map[string]int{}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		idx[tag] = i
		keys = append(keys, tag)
	}
	sort.Strings(keys)
	return idx, keys
}

func decodeStruct(path string, raw map[string]any, v reflect.Value, probs *Problems) {
	idx, keys := fieldsByKey(v.Type())
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		i, ok := idx[strings.ToLower(k)]
		if !ok {
			msg := fmt.Sprintf("unknown key (known keys under %s: %s)", orTop(path), strings.Join(keys, ", "))
			if s := closest(strings.ToLower(k), keys); s != "" {
				msg = fmt.Sprintf("unknown key; did you mean %q? (known keys under %s: %s)", s, orTop(path), strings.Join(keys, ", "))
			}
			*probs = append(*probs, Problem{join(path, k), msg})
			continue
		}
		decodeValue(join(path, k), raw[k], v.Field(i), probs)
	}
}

func orTop(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func decodeValue(path string, raw any, v reflect.Value, probs *Problems) {
	if raw == nil {
		return // an empty key keeps its default
	}
	bad := func(format string, args ...any) {
		*probs = append(*probs, Problem{path, fmt.Sprintf(format, args...)})
	}
	if v.Type() == durationType {
		switch x := raw.(type) {
		case string:
			if x == "0" || x == "" {
				v.SetInt(0)
				return
			}
			d, err := time.ParseDuration(x)
			if err != nil {
				bad("%q is not a duration (example: 720h)", x)
				return
			}
			if d < 0 {
				bad("%q is negative; use a positive duration (example: 720h)", x)
				return
			}
			v.SetInt(int64(d))
		case int, int64, float64:
			if n, ok := asInt(x); ok && n == 0 {
				v.SetInt(0)
				return
			}
			bad("%v has no unit; write a duration with its unit (example: 720h)", x)
		default:
			bad("%v is not a duration (example: 720h)", x)
		}
		return
	}
	switch v.Kind() {
	case reflect.String:
		switch x := raw.(type) {
		case string:
			v.SetString(x)
		case int, int64, float64, bool:
			v.SetString(fmt.Sprint(x))
		default:
			bad("must be a single value, not %s", describe(raw))
		}
	case reflect.Bool:
		switch x := raw.(type) {
		case bool:
			v.SetBool(x)
		case string:
			b, err := strconv.ParseBool(x)
			if err != nil {
				bad("%q is not a boolean (use true or false)", x)
				return
			}
			v.SetBool(b)
		default:
			bad("%v is not a boolean (use true or false)", raw)
		}
	case reflect.Int:
		n, ok := asInt(raw)
		if s, isStr := raw.(string); isStr {
			i, err := strconv.Atoi(strings.TrimSpace(s))
			n, ok = int64(i), err == nil
		}
		if !ok {
			bad("%s is not a whole number", quoted(raw))
			return
		}
		v.SetInt(n)
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			bad("must be a mapping of keys, not %s", describe(raw))
			return
		}
		decodeStruct(path, m, v, probs)
	case reflect.Map: // map[string]string (labels)
		m, ok := raw.(map[string]any)
		if !ok {
			bad("must be a mapping of names to values, not %s", describe(raw))
			return
		}
		out := reflect.MakeMapWithSize(v.Type(), len(m))
		for k, val := range m {
			switch val.(type) {
			case string, int, int64, float64, bool:
				out.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(fmt.Sprint(val)))
			default:
				*probs = append(*probs, Problem{join(path, k), fmt.Sprintf("must be a single value, not %s", describe(val))})
			}
		}
		v.Set(out)
	case reflect.Slice:
		var items []any
		switch x := raw.(type) {
		case []any:
			items = x
		case string:
			if v.Type().Elem().Kind() != reflect.String {
				bad("must be a list, not %s", describe(raw))
				return
			}
			for _, s := range strings.Split(x, ",") { // environment variables give lists comma-separated
				if s = strings.TrimSpace(s); s != "" {
					items = append(items, s)
				}
			}
		default:
			bad("must be a list, not %s", describe(raw))
			return
		}
		out := reflect.MakeSlice(v.Type(), 0, len(items))
		for i, it := range items {
			elem := reflect.New(v.Type().Elem()).Elem()
			if def, ok := elemDefaults[elem.Type()]; ok {
				elem.Set(reflect.ValueOf(def()))
			}
			decodeValue(fmt.Sprintf("%s[%d]", path, i), it, elem, probs)
			out = reflect.Append(out, elem)
		}
		v.Set(out)
	default:
		bad("cannot be set (internal: unsupported type %s)", v.Type())
	}
}

func asInt(x any) (int64, bool) {
	switch n := x.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		if n == math.Trunc(n) {
			return int64(n), true
		}
	}
	return 0, false
}

func describe(x any) string {
	switch x.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	default:
		return fmt.Sprintf("%v", x)
	}
}

// Keys lists the full path of every leaf key of the configuration, as environment variables and flags name
// them (list items excluded).
func Keys() []string {
	var out []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		_, keys := fieldsByKey(t)
		idx, _ := fieldsByKey(t)
		for _, k := range keys {
			f := t.Field(idx[k])
			p := join(prefix, k)
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(p, f.Type)
				continue
			}
			out = append(out, p)
		}
	}
	walk("", reflect.TypeOf(Config{}))
	return out
}

func quoted(x any) string {
	if s, ok := x.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(x)
}

// closest returns the known key within edit distance 2 of k, for "did you mean".
func closest(k string, keys []string) string {
	best, bestD := "", 3
	for _, c := range keys {
		if d := editDistance(k, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
