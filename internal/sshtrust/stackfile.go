package sshtrust

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// PinInStackFile sets sda:proxmox.nodes[].sshHostKey of each node named in
// pins to its key in the stack file's YAML and returns the new text. It
// edits lines, not a re-marshalled document: only the pinned lines change,
// and comments and layout stay as the user wrote them. A node the file
// does not list, a flow-style node ({name: pve}) and a file without
// sda:proxmox.nodes are errors, and the result is read back to check that
// every pin reads as written.
func PinInStackFile(data []byte, pins map[string]string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("the stack file is empty")
	}
	nodes := lookup(lookup(lookup(doc.Content[0], "config"), "sda:proxmox"), "nodes")
	if nodes == nil || nodes.Kind != yaml.SequenceNode || nodes.Style&yaml.FlowStyle != 0 {
		return nil, fmt.Errorf("the stack file has no sda:proxmox.nodes list in block style (one \"- name: …\" per node)")
	}
	lines := strings.Split(string(data), "\n")
	type edit struct {
		line    int // 0-based
		replace bool
		text    string
	}
	var edits []edit
	for _, n := range nodes.Content {
		name := lookup(n, "name")
		key, ok := pins[valueOf(name)]
		if !ok {
			continue
		}
		if n.Style&yaml.FlowStyle != 0 {
			return nil, fmt.Errorf("node %s is written in flow style ({name: …}): write it as a block mapping to pin its key", name.Value)
		}
		indent := strings.Repeat(" ", n.Content[0].Column-1)
		if v := lookup(n, "sshHostKey"); v != nil {
			if v.Line != lastLine(v) {
				return nil, fmt.Errorf("node %s: its sshHostKey spans several lines; write it on one", name.Value)
			}
			edits = append(edits, edit{line: v.Line - 1, replace: true, text: lines[v.Line-1][:v.Column-1] + key})
		} else {
			edits = append(edits, edit{line: lastLine(n), text: indent + "sshHostKey: " + key})
		}
	}
	// Bottom up, so each edit's line number is still right.
	slices.SortFunc(edits, func(a, b edit) int { return b.line - a.line })
	for _, e := range edits {
		if e.replace {
			lines[e.line] = e.text
		} else {
			lines = slices.Insert(lines, e.line, e.text)
		}
	}
	out := []byte(strings.Join(lines, "\n"))
	if err := readsBack(out, pins); err != nil {
		return nil, err
	}
	return out, nil
}

// readsBack checks that out is YAML whose nodes carry exactly pins.
func readsBack(out []byte, pins map[string]string) error {
	var back struct {
		Config map[string]yaml.Node `yaml:"config"`
	}
	if err := yaml.Unmarshal(out, &back); err != nil {
		return fmt.Errorf("the edited stack file does not parse: %w", err)
	}
	px := back.Config["sda:proxmox"]
	var proxmox struct {
		Nodes []struct {
			Name       string `yaml:"name"`
			SSHHostKey string `yaml:"sshHostKey"`
		} `yaml:"nodes"`
	}
	if err := px.Decode(&proxmox); err != nil {
		return fmt.Errorf("the edited stack file's sda:proxmox: %w", err)
	}
	found := 0
	for _, n := range proxmox.Nodes {
		if want, ok := pins[n.Name]; ok {
			if n.SSHHostKey != want {
				return fmt.Errorf("node %s: the edited file reads %q, not the key", n.Name, n.SSHHostKey)
			}
			found++
		}
	}
	if found != len(pins) {
		var names []string
		for name := range pins {
			names = append(names, name)
		}
		slices.Sort(names)
		return fmt.Errorf("sda:proxmox.nodes does not list every node of %v", names)
	}
	return nil
}

// lastLine is the last line (1-based) any part of n is on.
func lastLine(n *yaml.Node) int {
	last := n.Line
	for _, c := range n.Content {
		last = max(last, lastLine(c))
	}
	return last
}

func valueOf(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	return n.Value
}

// lookup is the value of key in a YAML mapping node (nil if absent).
func lookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
