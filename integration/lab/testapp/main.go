// Command testapp is the tiny static program behind the lab image swarmguard-testapp:lab.
//
// Integration tests run it as a swarm service to observe what a task sees:
//
//	testapp print FILE [FILE...]  every second, print one line FILE=<content> per file
//	                              (a secret's target file, for example); exit 0 on SIGTERM
//	testapp fail                  exit 1 at once (a task that never becomes healthy)
//	testapp sleep                 wait for SIGTERM, then exit 0 (the image's default command)
//	testapp refuse-nnp            exit 1 at once when started with no_new_privs (a workload that
//	                              breaks when hardened), otherwise as sleep
//	testapp get URL               one HTTP GET: print the status line and the body, exit 0 on
//	                              2xx, 1 otherwise (reachability checks from inside a node)
//
// It uses the standard library only and is built with CGO_ENABLED=0 so that it runs in an image
// made of nothing but this binary.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	// SIGTERM (docker stop, a service update) and SIGINT end every long-running mode cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	switch mode, args := os.Args[1], os.Args[2:]; mode {
	case "print":
		if len(args) == 0 {
			usage()
		}
		printLoop(ctx, args)
	case "fail":
		fmt.Fprintln(os.Stderr, "testapp: failing on purpose")
		os.Exit(1)
	case "sleep":
		<-ctx.Done()
	case "refuse-nnp":
		if noNewPrivs() {
			fmt.Fprintln(os.Stderr, "testapp: started with no_new_privs, refusing to run")
			os.Exit(1)
		}
		<-ctx.Done()
	case "get":
		if len(args) != 1 {
			usage()
		}
		os.Exit(get(ctx, args[0]))
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: testapp print FILE [FILE...] | fail | sleep | refuse-nnp | get URL")
	os.Exit(2)
}

// printLoop prints every file once a second until ctx ends. A file that cannot be read is reported on
// stderr only, so stdout carries nothing but FILE=<content> lines.
func printLoop(ctx context.Context, files []string) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
				continue
			}
			fmt.Printf("%s=%s\n", f, oneLine(string(b)))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// noNewPrivs says whether the process runs with no_new_privs set (/proc/self/status "NoNewPrivs: 1").
func noNewPrivs() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "NoNewPrivs:"); ok {
			return strings.TrimSpace(v) == "1"
		}
	}
	return false
}

// oneLine drops trailing line breaks and escapes inner ones so that each file stays on one line.
func oneLine(s string) string {
	s = strings.TrimRight(s, "\r\n")
	return strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\r", "\\r").Replace(s)
}

func get(ctx context.Context, url string) int {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	fmt.Println(resp.Status)
	fmt.Println(strings.TrimRight(string(body), "\n"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
		return 1
	}
	if resp.StatusCode/100 != 2 {
		return 1
	}
	return 0
}
