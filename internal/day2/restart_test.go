package day2

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Restart turns: a control plane restarts alone; workers restart up to
// Parallelism at a time and never beside a control plane; a turn held too
// long makes the others' waits fail naming it.
func TestRestartTurns(t *testing.T) {
	tt := newTurnTable()
	ctx := context.Background()
	r := func(name string, cp bool) Restart {
		return Restart{ClusterName: "prod", Node: Node{Hostname: name, ControlPlane: cp}, Parallelism: 2, Timeout: 2 * time.Second}
	}
	if err := tt.take(ctx, r("cp1", true)); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	for _, w := range []string{"w1", "w2", "w3"} {
		go func() {
			if err := tt.take(ctx, r(w, false)); err == nil {
				got <- w
			}
		}()
	}
	select {
	case w := <-got:
		t.Fatalf("%s took a turn while a control plane restarts", w)
	case <-time.After(100 * time.Millisecond):
	}
	tt.give(r("cp1", true))
	first := []string{<-got, <-got}
	select {
	case w := <-got:
		t.Fatalf("%s took a third worker turn with parallelism 2 (%v hold them)", w, first)
	case <-time.After(100 * time.Millisecond):
	}
	if err := tt.take(ctx, Restart{ClusterName: "other", Node: Node{Hostname: "cp1", ControlPlane: true}, Timeout: time.Second}); err != nil {
		t.Fatalf("another cluster's turns are its own: %v", err)
	}
	tt.give(r(first[0], false))
	third := <-got
	short := r("cp2", true)
	short.Timeout = 200 * time.Millisecond
	err := tt.take(ctx, short)
	if err == nil || !strings.Contains(err.Error(), "still restarting") || !strings.Contains(err.Error(), third) {
		t.Fatalf("a control plane waiting behind workers: %v", err)
	}
	if others := tt.others(Restart{ClusterName: "prod", Node: Node{Hostname: third},
		Cluster: []Node{{Hostname: "cp1", ControlPlane: true}, {Hostname: "w1"}, {Hostname: "w2"}, {Hostname: "w3"}}}); len(others) != 3 {
		t.Errorf("the gate of %s checks %v: want every node but the other worker restarting", third, others)
	}
}
