package automation

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

// progress turns engine events into one line per resource step, so a
// person sees what is being created and how long each step takes.
type progress struct {
	w       io.Writer
	op      string
	mu      sync.Mutex
	started map[string]time.Time
	index   map[string]int // URN+op -> index in Result.Steps
	// finished is set once the result is handed back; late events are dropped.
	finished bool
}

func newProgress(w io.Writer, op, stack string) *progress {
	if w == nil {
		w = io.Discard
	}
	fmt.Fprintf(w, "%s %s\n", op, stack)
	return &progress{w: w, op: op, started: map[string]time.Time{}, index: map[string]int{}}
}

var opSymbol = map[apitype.OpType]string{
	apitype.OpCreate: "+", apitype.OpUpdate: "~", apitype.OpDelete: "-", apitype.OpReplace: "+-",
	apitype.OpCreateReplacement: "++", apitype.OpDeleteReplaced: "--", apitype.OpRead: ">",
	apitype.OpRefresh: "~r", apitype.OpReadReplacement: ">>", apitype.OpImport: "=",
}

var opDone = map[apitype.OpType]string{
	apitype.OpCreate: "created", apitype.OpUpdate: "updated", apitype.OpDelete: "deleted",
	apitype.OpReplace: "replaced", apitype.OpCreateReplacement: "created replacement",
	apitype.OpDeleteReplaced: "deleted original", apitype.OpRefresh: "refreshed", apitype.OpRead: "read",
}

func nameOf(urn string) string {
	if i := strings.LastIndex(urn, "::"); i >= 0 {
		return urn[i+2:]
	}
	return urn
}

func (p *progress) handle(e apitype.EngineEvent, res *Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	switch {
	case e.ResourcePreEvent != nil:
		m := e.ResourcePreEvent.Metadata
		key := m.URN + "|" + string(m.Op)
		p.started[key] = time.Now()
		p.index[key] = len(res.Steps)
		res.Steps = append(res.Steps, Step{URN: m.URN, Type: m.Type, Name: nameOf(m.URN), Op: string(m.Op),
			Diffs: m.Diffs, Replaces: m.Keys})
		// A refresh step is announced for every resource; only its
		// outcome (the summary) says whether anything drifted.
		if m.Op == apitype.OpSame || m.Op == apitype.OpRefresh || m.Type == "pulumi:pulumi:Stack" {
			return
		}
		detail := ""
		if len(m.Diffs) > 0 && m.Op != apitype.OpCreate {
			detail = " [" + strings.Join(m.Diffs, ", ") + "]"
		}
		verb := string(m.Op)
		if e.ResourcePreEvent.Planning {
			verb = "plan " + verb
		}
		fmt.Fprintf(p.w, "  %-2s %-20s %s (%s)%s\n", opSymbol[m.Op], verb, nameOf(m.URN), m.Type, detail)
	case e.ResOutputsEvent != nil:
		m := e.ResOutputsEvent.Metadata
		key := m.URN + "|" + string(m.Op)
		d := time.Since(p.started[key])
		if i, ok := p.index[key]; ok {
			res.Steps[i].Duration = d
		}
		if m.Op == apitype.OpSame || m.Op == apitype.OpRefresh || e.ResOutputsEvent.Planning || m.Type == "pulumi:pulumi:Stack" {
			return
		}
		fmt.Fprintf(p.w, "  ok %-20s %s (%.1fs)\n", opDone[m.Op], nameOf(m.URN), d.Seconds())
	case e.ResOpFailedEvent != nil:
		m := e.ResOpFailedEvent.Metadata
		key := m.URN + "|" + string(m.Op)
		if i, ok := p.index[key]; ok {
			res.Steps[i].Failed = true
			res.Steps[i].Duration = time.Since(p.started[key])
		}
		fmt.Fprintf(p.w, "  !! %-20s %s\n", "failed "+string(m.Op), nameOf(m.URN))
	case e.DiagnosticEvent != nil:
		d := e.DiagnosticEvent
		msg := strings.TrimSpace(d.Message)
		if msg == "" || d.Ephemeral {
			return
		}
		switch d.Severity {
		case "error":
			where := ""
			if d.URN != "" {
				where = nameOf(d.URN) + ": "
			}
			res.Errors = append(res.Errors, where+msg)
			fmt.Fprintf(p.w, "error: %s%s\n", where, msg)
		case "warning":
			fmt.Fprintf(p.w, "warning: %s\n", msg)
		case "info", "info#err":
			fmt.Fprintf(p.w, "  %s\n", msg)
		}
	case e.SummaryEvent != nil:
		for op, n := range e.SummaryEvent.ResourceChanges {
			res.Changes[string(op)] = n
		}
	}
}

func (p *progress) finish(res *Result, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished = true
	var parts []string
	for op, n := range res.Changes {
		parts = append(parts, fmt.Sprintf("%d %s", n, op))
	}
	sort.Strings(parts)
	status := "done"
	if err != nil {
		status = "FAILED"
	}
	fmt.Fprintf(p.w, "%s %s in %.1fs: %s\n", p.op, status, res.Duration.Seconds(), strings.Join(parts, ", "))
}
