package main

import (
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/swarmguard/swarmguard/operator/config"
)

// envPrefix is the prefix of every configuration environment variable: SWARMGUARD_TOKENS_WORKER_MAX_AGE
// sets tokens.worker.max_age.
const envPrefix = "SWARMGUARD"

// load builds the effective configuration (defaults, then the file, then SWARMGUARD_* environment, then
// flags) and the logger. Any problem is a usage error (exit 2) listing every problem, one per line.
func (a *app) load(cmd *cobra.Command) error {
	cfg, probs, err := a.readConfig(cmd)
	if err != nil {
		return &exitError{code: ExitUsage, err: err}
	}
	if len(probs) > 0 && cmd.Annotations["config"] != "lenient" {
		return &exitError{code: ExitUsage, err: fmt.Errorf("invalid configuration (fix these keys, then check with `swarmguard config check`):\n%s", probs.Sorted().Error())}
	}
	a.cfg = cfg
	a.log = newLogger(a.stderr, cfg.Log)
	return nil
}

// readConfig returns the effective configuration and its problems (decoding and validation). err is set
// only when the file itself cannot be read or parsed.
func (a *app) readConfig(cmd *cobra.Command) (config.Config, config.Problems, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	defaults, err := toMap(config.DefaultConfig())
	if err != nil {
		return config.Config{}, nil, err
	}
	for k, val := range flatten("", defaults) {
		v.SetDefault(k, val)
	}
	file := a.configFile
	if file == "" {
		file = os.Getenv(envPrefix + "_CONFIG")
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return config.Config{}, nil, fmt.Errorf("config file %s: %v (give a readable YAML file with --config)", file, err)
		}
	}
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	probs := unknownEnv(os.Environ())

	flagKeys := map[string]string{"log-level": "log.level", "log-format": "log.format", "host": "docker.host", "api-timeout": "docker.api_timeout"}
	for flag, key := range flagKeys {
		if f := cmd.Flags().Lookup(flag); f != nil && f.Changed {
			v.Set(key, f.Value.String())
		}
	}
	cfg, decodeProbs := config.DecodeConfig(config.DefaultConfig(), v.AllSettings())
	probs = append(probs, decodeProbs...)
	// Validation of a key that failed to decode would repeat the same problem; report each key once.
	seen := map[string]bool{}
	for _, p := range probs {
		seen[p.Key] = true
	}
	for _, p := range cfg.Validate() {
		if !seen[p.Key] {
			probs = append(probs, p)
		}
	}
	return cfg, probs, nil
}

// unknownEnv reports SWARMGUARD_* variables that name no key: a typo must not pass silently.
func unknownEnv(environ []string) config.Problems {
	known := map[string]bool{envPrefix + "_CONFIG": true}
	for _, k := range config.Keys() {
		known[envPrefix+"_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = true
	}
	var ps config.Problems
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix+"_") && !known[name] {
			ps = append(ps, config.Problem{Key: name, Msg: "unknown environment variable (SWARMGUARD_ followed by a key path with '_' for '.', example: SWARMGUARD_TOKENS_WORKER_MAX_AGE)"})
		}
	}
	return ps
}

// toMap renders a value through YAML into plain maps, so defaults look to viper like a file's values.
func toMap(v any) (map[string]any, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("rendering defaults: %w", err)
	}
	out := map[string]any{}
	if err := yaml.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("rendering defaults: %w", err)
	}
	return out, nil
}

func flatten(prefix string, m map[string]any) map[string]any {
	out := map[string]any{}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := m[k].(map[string]any); ok && len(sub) > 0 {
			for kk, vv := range flatten(key, sub) {
				out[kk] = vv
			}
			continue
		}
		out[key] = m[k]
	}
	return out
}

// newLogger builds the one logger: text on a terminal, JSON otherwise, unless log.format says.
func newLogger(w interface{ Write([]byte) (int, error) }, lc config.LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(lc.Level)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	format := lc.Format
	if format == "auto" || format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
