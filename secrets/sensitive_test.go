package secrets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/swarmguard/swarmguard/sensitive"
)

const leak = "hunter2-very-secret"

func TestSensitiveNeverPrints(t *testing.T) {
	s := sensitive.New(leak)
	v := NewValue("secret/apps/db", 3, map[string]string{"password": leak})
	type wrap struct {
		S sensitive.Value
		V Value
		P *sensitive.Value
	}
	w := wrap{S: s, V: v, P: &s}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, v), fmt.Sprintf(verb, w), fmt.Sprintf(verb, []sensitive.Value{s}))
	}
	outs = append(outs, s.String(), v.String(), fmt.Sprint(s, v), fmt.Errorf("wrapped: %v %w", s, errors.New("x")).Error())
	for _, x := range []any{s, v, w, map[string]sensitive.Value{"k": s}} {
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatalf("json.Marshal(%T) error %v", x, err)
		}
		outs = append(outs, string(b))
	}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("value", "s", s, "v", v, "w", w, "any", any(s))
	}
	outs = append(outs, buf.String())
	for _, o := range outs {
		if strings.Contains(o, leak) || strings.Contains(o, fmt.Sprintf("%x", leak)) {
			t.Errorf("output leaks the value: %s", o)
		}
	}
	if !strings.Contains(v.String(), "password") || !strings.Contains(v.String(), "version=3") {
		t.Errorf("Value.String() = %q; want path, version and key names", v.String())
	}
	if s.Reveal() != leak || string(s.Bytes()) != leak || s.Len() != len(leak) {
		t.Errorf("Reveal/Bytes/Len do not give the content")
	}
	if !s.Equal(sensitive.New(leak)) || s.Equal(sensitive.New("other")) {
		t.Errorf("Equal is wrong")
	}
}
