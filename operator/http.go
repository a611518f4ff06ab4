package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyzEngineTimeout bounds the engine check of one /readyz request, well inside a probe's own timeout.
const readyzEngineTimeout = 3 * time.Second

// ReadinessFunc reports readiness; *Runtime.Ready is one.
type ReadinessFunc func(ctx context.Context) Readiness

// NewHandler serves /healthz (the process is alive and serving), /readyz (engine reachable, configuration
// valid, role known; the body says holder or standby), /metrics (the runtime's registry) and
// /status/secrets (JSON, what secrets returns; it reads memory only, never the engine).
func NewHandler(m *Metrics, ready ReadinessFunc, secrets func() any) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyzEngineTimeout)
		defer cancel()
		rd := ready(ctx)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !rd.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = fmt.Fprint(w, ReadinessText(rd))
	})
	mux.HandleFunc("GET /status/secrets", func(w http.ResponseWriter, _ *http.Request) {
		body := secrets()
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(body)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{Registry: m.Registry()}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "swarmguard: /healthz /readyz /metrics /status/secrets")
	})
	return mux
}

// ReadinessText is the /readyz body: the verdict and role on the first line ("ready: holder", "ready:
// standby", "not ready: ..."), then one fact per line.
func ReadinessText(rd Readiness) string {
	var b strings.Builder
	st := rd.Lease
	if rd.Ready {
		fmt.Fprintf(&b, "ready: %s\n", st.Role)
	} else {
		var why []string
		if rd.Engine != "ok" {
			why = append(why, "engine unreachable")
		}
		if rd.Config != "ok" {
			why = append(why, "configuration invalid")
		}
		if st.Role == RoleUnknown {
			why = append(why, "lease not read yet")
		}
		fmt.Fprintf(&b, "not ready: %s\n", strings.Join(why, ", "))
	}
	fmt.Fprintf(&b, "role: %s\n", st.Role)
	fmt.Fprintf(&b, "self: %s\n", st.Self)
	holder := st.Holder
	switch {
	case holder == "" && st.Role != RoleUnknown:
		holder = "none (released)"
	case holder == "":
		holder = "unknown"
	default:
		if st.HolderActor != "" {
			holder += " (" + st.HolderActor + ", " + st.HolderWhat + ")"
		}
		if st.Expired {
			holder += " expired"
		}
	}
	fmt.Fprintf(&b, "holder: %s\n", holder)
	if st.Seq != "" {
		fmt.Fprintf(&b, "lease seq: %s (unchanged for %s)\n", st.Seq, st.SeenFor.Round(100*time.Millisecond))
	}
	fmt.Fprintf(&b, "engine: %s\n", rd.Engine)
	fmt.Fprintf(&b, "config: %s\n", strings.ReplaceAll(rd.Config, "\n", "; "))
	if st.Err != "" {
		fmt.Fprintf(&b, "lease error: %s\n", st.Err)
	}
	return b.String()
}
