// Package kube is the small Kubernetes API client SDA's plugin uses for
// day-2 work: Node readiness, cordon and uncordon, drain by eviction, Node
// deletion, static-pod status and server-side apply. It speaks the API's
// REST protocol over net/http with the admin kubeconfig's client
// certificate, and reaches the API server through HTTPS_PROXY when one is
// set, as kubectl does.
//
// Why not client-go: SDA needs seven calls, and client-go with its API
// types would add minutes to every cold build of the plugin (NOTES.md's
// build costs). The request and response shapes are the API's own
// (k8s.io/api core/v1, policy/v1; k8s.io/apimachinery meta/v1 Status), and
// the behaviours that matter (which pods a drain skips, a 429 on a refused
// eviction, the apply patch type) follow k8s.io/kubectl's drain package and
// the API conventions; each is cited where it is used.
package kube

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Client is a connection to one cluster's API server.
type Client struct {
	server string
	http   *http.Client
}

// kubeconfig is the part of a kubeconfig the client reads: the current
// context's cluster (server, CA) and user (client certificate and key).
type kubeconfig struct {
	CurrentContext string `yaml:"current-context"`
	Clusters       []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			Server string `yaml:"server"`
			CA     string `yaml:"certificate-authority-data"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Contexts []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster string `yaml:"cluster"`
			User    string `yaml:"user"`
		} `yaml:"context"`
	} `yaml:"contexts"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			Cert string `yaml:"client-certificate-data"`
			Key  string `yaml:"client-key-data"`
		} `yaml:"user"`
	} `yaml:"users"`
}

// New is a client for the kubeconfig's current context (the first context
// when none is current). Only embedded certificates are read: Talos's
// admin kubeconfig has nothing else.
func New(rawKubeconfig string) (*Client, error) {
	var kc kubeconfig
	if err := yaml.Unmarshal([]byte(rawKubeconfig), &kc); err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if len(kc.Contexts) == 0 {
		return nil, errors.New("kubeconfig: no context")
	}
	ctx := kc.Contexts[0].Context
	for _, c := range kc.Contexts {
		if c.Name == kc.CurrentContext {
			ctx = c.Context
		}
	}
	var server, caData, certData, keyData string
	for _, c := range kc.Clusters {
		if c.Name == ctx.Cluster {
			server, caData = c.Cluster.Server, c.Cluster.CA
		}
	}
	for _, u := range kc.Users {
		if u.Name == ctx.User {
			certData, keyData = u.User.Cert, u.User.Key
		}
	}
	if server == "" {
		return nil, fmt.Errorf("kubeconfig: context's cluster %q has no server", ctx.Cluster)
	}
	ca, err := base64.StdEncoding.DecodeString(caData)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: certificate-authority-data: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("kubeconfig: certificate-authority-data holds no certificate")
	}
	cert, err := base64.StdEncoding.DecodeString(certData)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: client-certificate-data: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(keyData)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: client-key-data: %w", err)
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: client certificate: %w", err)
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &Client{server: strings.TrimSuffix(server, "/"), http: &http.Client{Transport: transport, Timeout: 30 * time.Second}}, nil
}

// Close releases the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Server is the API server's URL.
func (c *Client) Server() string { return c.server }

// StatusError is the API's answer to a failed request (a meta/v1 Status).
type StatusError struct {
	Code    int
	Reason  string
	Message string
}

func (e *StatusError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("kubernetes: %s (%d %s)", e.Message, e.Code, e.Reason)
	}
	return fmt.Sprintf("kubernetes: %s (%d)", e.Message, e.Code)
}

// IsNotFound reports a 404 from the API.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// IsTooManyRequests reports a 429: an eviction a PodDisruptionBudget
// refuses now (the API's answer, kubectl drain retries it).
func IsTooManyRequests(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusTooManyRequests
}

// do sends one request and decodes a 2xx answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, contentType string, body []byte, out any) error {
	u := c.server + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("kubernetes: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("kubernetes: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		se := &StatusError{Code: resp.StatusCode, Message: strings.TrimSpace(string(data))}
		var st struct {
			Kind    string `json:"kind"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &st) == nil && st.Kind == "Status" {
			se.Reason, se.Message = st.Reason, st.Message
		}
		if se.Message == "" {
			se.Message = resp.Status
		}
		se.Message = fmt.Sprintf("%s %s: %s", method, path, se.Message)
		return se
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("kubernetes: %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// objectMeta is the part of meta/v1 ObjectMeta SDA reads.
type objectMeta struct {
	Name            string            `json:"name"`
	Namespace       string            `json:"namespace"`
	UID             string            `json:"uid"`
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations"`
	OwnerReferences []struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"ownerReferences"`
}

type condition struct {
	Type   string `json:"type"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// Node is what SDA reads of a core/v1 Node.
type Node struct {
	Name          string
	Labels        map[string]string
	Unschedulable bool
	// InternalIP is the first address of type InternalIP.
	InternalIP string
	// Ready is the Ready condition's status: "True", "False" or "Unknown"
	// ("" when the node reports no Ready condition yet).
	Ready string
	// KubeletVersion is status.nodeInfo.kubeletVersion.
	KubeletVersion string
}

type nodeJSON struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		Unschedulable bool `json:"unschedulable"`
	} `json:"spec"`
	Status struct {
		Addresses []struct {
			Type    string `json:"type"`
			Address string `json:"address"`
		} `json:"addresses"`
		Conditions []condition `json:"conditions"`
		NodeInfo   struct {
			KubeletVersion string `json:"kubeletVersion"`
		} `json:"nodeInfo"`
	} `json:"status"`
}

func (n nodeJSON) node() Node {
	out := Node{Name: n.Metadata.Name, Labels: n.Metadata.Labels, Unschedulable: n.Spec.Unschedulable,
		KubeletVersion: n.Status.NodeInfo.KubeletVersion}
	for _, a := range n.Status.Addresses {
		if a.Type == "InternalIP" && out.InternalIP == "" {
			out.InternalIP = a.Address
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" {
			out.Ready = c.Status
		}
	}
	return out
}

// Nodes lists the Nodes a label selector matches ("" for all).
func (c *Client) Nodes(ctx context.Context, labelSelector string) ([]Node, error) {
	q := url.Values{}
	if labelSelector != "" {
		q.Set("labelSelector", labelSelector)
	}
	var list struct {
		Items []nodeJSON `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/nodes", q, "", nil, &list); err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(list.Items))
	for _, n := range list.Items {
		out = append(out, n.node())
	}
	return out, nil
}

// Node reads one Node (IsNotFound when there is none).
func (c *Client) Node(ctx context.Context, name string) (Node, error) {
	var n nodeJSON
	if err := c.do(ctx, http.MethodGet, "/api/v1/nodes/"+url.PathEscape(name), nil, "", nil, &n); err != nil {
		return Node{}, err
	}
	return n.node(), nil
}

// SetUnschedulable cordons (true) or uncordons (false) a Node: the merge
// patch kubectl's cordon helper sends (k8s.io/kubectl pkg/drain/cordon.go
// patches spec.unschedulable; unschedulable is omitempty, so uncordoning
// removes the field).
func (c *Client) SetUnschedulable(ctx context.Context, name string, unschedulable bool) error {
	patch := []byte(`{"spec":{"unschedulable":true}}`)
	if !unschedulable {
		patch = []byte(`{"spec":{"unschedulable":null}}`)
	}
	return c.do(ctx, http.MethodPatch, "/api/v1/nodes/"+url.PathEscape(name), nil, "application/merge-patch+json", patch, nil)
}

// DeleteNode deletes a Node object; one that is already gone is no error.
func (c *Client) DeleteNode(ctx context.Context, name string) error {
	err := c.do(ctx, http.MethodDelete, "/api/v1/nodes/"+url.PathEscape(name), nil, "", nil, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// Pod is what SDA reads of a core/v1 Pod.
type Pod struct {
	Namespace, Name, UID string
	NodeName, HostIP     string
	Phase                string
	Labels, Annotations  map[string]string
	// OwnerKinds are the kinds of the pod's owners (DaemonSet,
	// ReplicaSet, Node for a mirror pod, ...).
	OwnerKinds []string
	// Ready is the PodReady condition's status is True.
	Ready bool
}

type podJSON struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		NodeName string `json:"nodeName"`
	} `json:"spec"`
	Status struct {
		Phase      string      `json:"phase"`
		HostIP     string      `json:"hostIP"`
		Conditions []condition `json:"conditions"`
	} `json:"status"`
}

func (p podJSON) pod() Pod {
	out := Pod{Namespace: p.Metadata.Namespace, Name: p.Metadata.Name, UID: p.Metadata.UID,
		NodeName: p.Spec.NodeName, HostIP: p.Status.HostIP, Phase: p.Status.Phase,
		Labels: p.Metadata.Labels, Annotations: p.Metadata.Annotations}
	for _, o := range p.Metadata.OwnerReferences {
		out.OwnerKinds = append(out.OwnerKinds, o.Kind)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" && c.Status == "True" {
			out.Ready = true
		}
	}
	return out
}

// PodQuery selects pods: in Namespace ("" for every namespace), by field
// and label selectors ("" for none).
type PodQuery struct {
	Namespace, FieldSelector, LabelSelector string
}

// Pods lists the pods the query selects.
func (c *Client) Pods(ctx context.Context, q PodQuery) ([]Pod, error) {
	path := "/api/v1/pods"
	if q.Namespace != "" {
		path = "/api/v1/namespaces/" + url.PathEscape(q.Namespace) + "/pods"
	}
	v := url.Values{}
	if q.FieldSelector != "" {
		v.Set("fieldSelector", q.FieldSelector)
	}
	if q.LabelSelector != "" {
		v.Set("labelSelector", q.LabelSelector)
	}
	var list struct {
		Items []podJSON `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, path, v, "", nil, &list); err != nil {
		return nil, err
	}
	out := make([]Pod, 0, len(list.Items))
	for _, p := range list.Items {
		out = append(out, p.pod())
	}
	return out, nil
}

// Evict asks the API to evict a pod (policy/v1 Eviction, what kubectl
// drain posts): a PodDisruptionBudget that forbids it now answers 429
// (IsTooManyRequests).
func (c *Client) Evict(ctx context.Context, p Pod) error {
	body, _ := json.Marshal(map[string]any{
		"apiVersion": "policy/v1",
		"kind":       "Eviction",
		"metadata":   map[string]string{"name": p.Name, "namespace": p.Namespace},
	})
	path := "/api/v1/namespaces/" + url.PathEscape(p.Namespace) + "/pods/" + url.PathEscape(p.Name) + "/eviction"
	return c.do(ctx, http.MethodPost, path, nil, "application/json", body, nil)
}

// Apply is a server-side apply of one object (the API's apply patch type,
// application/apply-patch+yaml; JSON is YAML) at its REST path, as the
// field manager, forcing conflicts with other managers when force is set
// (what `kubectl apply --server-side --force-conflicts` sends).
func (c *Client) Apply(ctx context.Context, path string, object []byte, fieldManager string, force bool) error {
	q := url.Values{"fieldManager": {fieldManager}}
	if force {
		q.Set("force", "true")
	}
	return c.do(ctx, http.MethodPatch, path, q, "application/apply-patch+yaml", object, nil)
}

// Get reads the object at a REST path into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, "", nil, out)
}
