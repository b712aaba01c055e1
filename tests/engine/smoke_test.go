package engine

import "testing"

func TestSmokeDevUp(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := testContext(t)
	d := e.open(ctx)
	res, err := d.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(describe(res.Steps))
	e.assertConsistent(d)
}
