package actors_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchChild is the client side of a fan-out benchmark in a child process of the test binary (TestMain
// dispatches on env), so that this process's CPU is the server's: it speaks a line protocol on stdin/stdout
// ("up" once its clients are in, "cpu" answered with "cpu <ns>", other lines the benchmark's own).
type benchChild struct {
	b       *testing.B
	toChild io.WriteCloser
	lines   chan string
	what    string // "the contacts", for messages
}

// startBenchChild runs the test binary with env set (NAME=value) and waits for its "up".
func startBenchChild(b *testing.B, env, what string) *benchChild {
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), env)
	child.Stderr = os.Stderr
	toChild, err := child.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	fromChild, err := child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	c := &benchChild{b: b, toChild: toChild, lines: make(chan string, 64), what: what}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(fromChild)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		_ = child.Wait() // only after the last read: Wait closes the pipe
		close(exited)
	}()
	// Registered after the server's cleanup, so run before it: the clients end their streams (stdin closed)
	// while the server is still up.
	b.Cleanup(func() {
		toChild.Close()
		rest, kill := c.lines, time.After(10*time.Second)
		for {
			select {
			case <-exited:
				return
			case _, ok := <-rest: // unread lines: the reader must not block before it calls Wait
				if !ok {
					rest = nil
				}
			case <-kill:
				_ = child.Process.Kill()
				kill = nil
			}
		}
	})
	if _, ok := c.expect("up", 60*time.Second); !ok {
		b.Fatalf("%s are not up", what)
	}
	return c
}

// expect waits for the child's next line starting with prefix, skipping others (a late line of an earlier
// warm-up), and returns the rest of it; false when the time is up or the child is gone.
func (c *benchChild) expect(prefix string, within time.Duration) (string, bool) {
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return "", false
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest, true
			}
		case <-deadline:
			return "", false
		}
	}
}

// send writes one line to the child.
func (c *benchChild) send(line string) {
	if _, err := io.WriteString(c.toChild, line+"\n"); err != nil {
		c.b.Fatal(err)
	}
}

// cpu is the child's CPU time so far.
func (c *benchChild) cpu() time.Duration {
	c.send("cpu")
	v, _ := c.expect("cpu ", 10*time.Second)
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		c.b.Fatalf("no cpu time from %s' process", c.what)
	}
	return time.Duration(ns)
}
