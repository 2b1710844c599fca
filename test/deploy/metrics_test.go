package deploy

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"mellium.im/sasl"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// liveMetrics scrapes /metrics and returns every series name it shows, with the _bucket/_sum/_count (and for
// summaries _sum/_count) names of histograms and summaries, and the family names themselves.
func liveMetrics(t *testing.T, s *harness.Server) map[string]bool {
	t.Helper()
	res, err := http.Get("http://" + s.DebugAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
			if f[3] == "histogram" {
				names[f[2]+"_bucket"], names[f[2]+"_sum"], names[f[2]+"_count"] = true, true, true
			}
			if f[3] == "summary" {
				names[f[2]+"_sum"], names[f[2]+"_count"] = true, true
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords = map[string]bool{"by": true, "without": true, "and": true, "or": true, "unless": true, "on": true, "ignoring": true,
		"group_left": true, "group_right": true, "bool": true, "offset": true, "inf": true, "nan": true}
)

// metricNames are the metric names an expression selects: identifiers outside strings, label matchers, ranges
// and grouping clauses that are not functions (followed by "(") nor keywords.
func metricNames(expr string) []string {
	e := promStrings.ReplaceAllString(expr, `""`)
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRanges.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		id := e[loc[0]:loc[1]]
		rest := strings.TrimLeft(e[loc[1]:], " ")
		if strings.HasPrefix(rest, "(") || promKeywords[strings.ToLower(id)] {
			continue
		}
		if loc[0] > 0 && (e[loc[0]-1] == '$' || e[loc[0]-1] == '.' || e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9') {
			continue // a Grafana variable, a number's exponent or fraction
		}
		out = append(out, id)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (le) (rate(xmppd_routing_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval]))`, []string{"xmppd_routing_latency_seconds_bucket"}},
		{`a / b > 0.8 and on(instance) c{x="by (y)"} > 1e3`, []string{"a", "b", "c"}},
		{`histogram_quantile(0.99, sum by (instance, le) (rate(x_bucket[5m]))) > 0.5`, []string{"x_bucket"}},
	} {
		if got := metricNames(tc.expr); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("metricNames(%s) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

// fromElsewhere are the names the docs use that Prometheus and the blackbox exporter make, not xmppd.
var fromElsewhere = map[string]bool{"up": true, "probe_success": true}

// exercise makes the server create its labelled series: a successful and a failed login, stanzas of each kind,
// an offline message stored and delivered, a stream error.
func exercise(t *testing.T, s *harness.Server) {
	s.AddUser(t, "m1", "m1-password")
	s.AddUser(t, "m2", "m2-password")
	if c, err := xmppclient.LoginTo(t, s, "m1", "wrong-password", xmppclient.Options{Mechs: []sasl.Mechanism{sasl.ScramSha1}}); err == nil {
		c.Close()
		t.Fatal("a wrong password logged in")
	}
	a := xmppclient.Online(t, s, "m1", "m1-password", "r")
	a.Send("<message to='m2@localhost' type='chat'><body>offline</body></message>")
	a.IQ("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	b := xmppclient.Online(t, s, "m2", "m2-password", "r")
	b.Expect("the offline message", xmppclient.IsMessageWithBody("offline"))
	b.Send("<message to='m1@localhost/r' type='chat'><body>back</body></message>")
	a.Expect("the reply", xmppclient.IsMessageWithBody("back"))
	b.Close()
	a.Close()
	// A stream to a domain we do not serve: <host-unknown/> (xmppd_stream_errors_total).
	r := xmppclient.MustDialRaw(t, xmppclient.TargetOf(s), xmppclient.RawOptions{})
	if _, _, err := r.TryOpenTo("nowhere.example"); err == nil {
		t.Fatal("a stream to nowhere.example was accepted")
	}
	r.Close()
	res, err := http.Get("http://" + s.DebugAddr + "/debug/actors?format=json")
	if err == nil {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}

func TestDashboardAndAlertsUseLiveMetrics(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	exercise(t, s)
	live := liveMetrics(t, s)
	root := harness.ModuleRoot()

	var exprs []string
	b, err := os.ReadFile(filepath.Join(root, "docs/grafana/xmppd.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("docs/grafana/xmppd.json: %v", err)
	}
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if m := regexp.MustCompile(`label_values\((\w+)`).FindStringSubmatch(v.Definition); m != nil {
			exprs = append(exprs, m[1])
		}
	}
	rules, err := os.ReadFile(filepath.Join(root, "docs/prometheus/xmppd-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, line := range strings.Split(string(rules), "\n") {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "- alert:") {
			alerts++
		}
		if strings.HasPrefix(l, "expr:") {
			exprs = append(exprs, strings.TrimSpace(strings.TrimPrefix(l, "expr:")))
		}
	}
	if alerts < 6 || len(exprs) < 40 {
		t.Fatalf("%d alert rules, %d expressions in all: the files were not read as expected", alerts, len(exprs))
	}
	used := map[string]bool{}
	for _, e := range exprs {
		names := metricNames(e)
		if len(names) == 0 {
			t.Errorf("expression %q names no metric", e)
		}
		for _, n := range names {
			used[n] = true
		}
	}
	var missing []string
	for n := range used {
		if !live[n] && !fromElsewhere[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("metrics used in docs/grafana/xmppd.json or docs/prometheus/xmppd-alerts.yml that the live /metrics does not show: %v", missing)
	}
	t.Logf("%d expressions, %d distinct metric names, all in the live /metrics (%d names)", len(exprs), len(used), len(live))
}
