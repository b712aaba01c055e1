package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// The files of a simulation directory (env SDA_SIM_STATE). The test (or a
// person trying the simulation) writes World and Faults; the plugins keep
// State and append to the call log.
const (
	WorldFile    = "proxmox.json"
	FaultsFile   = "faults.json"
	StateFile    = "state.json"
	LogFile      = "calls.jsonl"
	lockFile     = "state.lock"
	countersFile = "counters.json"
)

// StateDirEnv names the environment variable with the simulation directory.
const StateDirEnv = "SDA_SIM_STATE"

// Call is one line of the call log.
type Call struct {
	Seq      int       `json:"seq"`
	Time     time.Time `json:"time"`
	Provider string    `json:"provider"`
	Method   string    `json:"method"`
	Type     string    `json:"type"`
	Name     string    `json:"name,omitempty"`
	ID       string    `json:"id,omitempty"`
	Error    string    `json:"error,omitempty"`
	// Millis is the wall time of the call, latency included.
	Millis int64 `json:"millis"`
}

// Store is the simulation directory. Every provider process opens it; a
// file lock serialises their transactions, since the engine runs several
// plugins (and several calls in each) at once.
type Store struct {
	Dir string
	mu  sync.Mutex
}

// Tx is one locked transaction on the simulation.
type Tx struct {
	World World
	State *State
	// Wait is how long the call blocks after the transaction, outside the
	// lock (a reboot the provider waits for, a guest agent that does not
	// answer). Kind functions add to it; the server sleeps it.
	Wait time.Duration
}

// lock runs fn holding the simulation's file lock.
func (s *Store) lock(fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.Dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck
	return fn()
}

// Update runs fn with the state locked and saves the state if fn returns nil.
func (s *Store) Update(fn func(tx *Tx) error) error {
	return s.lock(func() error {
		tx, err := s.read()
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		return writeJSON(filepath.Join(s.Dir, StateFile), tx.State)
	})
}

// read loads a transaction's world and state (the lock held).
func (s *Store) read() (*Tx, error) {
	tx := &Tx{State: &State{}}
	if err := readJSON(filepath.Join(s.Dir, WorldFile), &tx.World); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("simulated Proxmox configuration %s: %w", WorldFile, err)
	}
	if err := readJSON(filepath.Join(s.Dir, StateFile), tx.State); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("simulation state: %w", err)
	}
	tx.State.init()
	return tx, nil
}

// View runs fn with the state locked and does not save it: for readers
// (the Talos API's reachability checks and queries).
func (s *Store) View(fn func(tx *Tx) error) error {
	return s.lock(func() error {
		tx, err := s.read()
		if err != nil {
			return err
		}
		return fn(tx)
	})
}

// counters are the call counts the one-shot faults go by, and the call log
// sequence. They live apart from the state, which grows with machine
// configurations, so counting a call stays cheap.
type counters struct {
	Seq   int             `json:"seq"`
	Calls map[string]int  `json:"calls"`
	Fired map[string]bool `json:"fired"`
}

func (s *Store) counters(fn func(c *counters) error) error {
	return s.lock(func() error {
		path := filepath.Join(s.Dir, countersFile)
		c := &counters{}
		if err := readJSON(path, c); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if c.Calls == nil {
			c.Calls = map[string]int{}
		}
		if c.Fired == nil {
			c.Fired = map[string]bool{}
		}
		if err := fn(c); err != nil {
			return err
		}
		return writeJSON(path, c)
	})
}

// World reads the simulated Proxmox cluster (without the lock: the test
// writes it before the engine starts).
func (s *Store) World() (World, error) {
	var w World
	err := readJSON(filepath.Join(s.Dir, WorldFile), &w)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return w, err
}

// Faults reads the fault configuration (absent means none).
func (s *Store) Faults() (Faults, error) {
	var f Faults
	err := readJSON(filepath.Join(s.Dir, FaultsFile), &f)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return f, err
}

// Log appends a call to the call log.
func (s *Store) Log(c Call) error {
	return s.counters(func(cs *counters) error {
		cs.Seq++
		c.Seq = cs.Seq
		f, err := os.OpenFile(filepath.Join(s.Dir, LogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		_, err = f.Write(append(b, '\n'))
		return err
	})
}

// ReadCalls reads the call log of a simulation directory.
func ReadCalls(dir string) ([]Call, error) {
	data, err := os.ReadFile(filepath.Join(dir, LogFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var calls []Call
	dec := json.NewDecoder(bytes.NewReader(data))
	for dec.More() {
		var c Call
		if err := dec.Decode(&c); err != nil {
			return calls, err
		}
		calls = append(calls, c)
	}
	return calls, nil
}

// ReadState reads the simulation state (for tests and people inspecting a run).
func ReadState(dir string) (*State, error) {
	st := &State{}
	err := readJSON(filepath.Join(dir, StateFile), st)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	st.init()
	return st, err
}

// WriteWorld and WriteFaults set up a simulation directory.
func WriteWorld(dir string, w World) error   { return writeJSON(filepath.Join(dir, WorldFile), w) }
func WriteFaults(dir string, f Faults) error { return writeJSON(filepath.Join(dir, FaultsFile), f) }

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
