package proxmox

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// FileKey is where a file lives: shared stores have one copy for all nodes.
func FileKey(tx *engine.Tx, node, id string) string {
	ds, _, _ := strings.Cut(id, ":")
	if Shared(tx, ds) {
		node = "*"
	}
	return node + "/" + id
}

// The download file resource validates content_type and
// decompression_algorithm with the framework's OneOf validator.
var (
	downloadContentTypes = []string{"iso", "vztmpl"}
	decompressions       = []string{"gz", "lzo", "zst", "bz2"}
	// Proxmox's file name checks for download-url (pve-storage
	// PVE::Storage $ISO_EXT_RE_0 and $VZTMPL_EXT_RE_1).
	isoExt    = regexp.MustCompile(`(?i)[^/]+\.(?:iso|img)$`)
	vztmplExt = regexp.MustCompile(`(?i)[^/]+\.(?:tar|tar\.(?:gz|xz|zst|bz2))$`)
)

// oneOf is the message of terraform-plugin-framework-validators' OneOf.
func oneOf(attr string, allowed []string, got string) error {
	q := make([]string, len(allowed))
	for i, a := range allowed {
		q[i] = strconv.Quote(strconv.Quote(a))
	}
	return fmt.Errorf("Invalid Attribute Value Match: Attribute %s value must be one of: [%s], got: %q", attr, strings.Join(q, " "), got)
}

// URLSize is what the URL's Content-Length says: the World's URLSizes, or
// else what a download of it stores.
func URLSize(tx *engine.Tx, u string) int64 {
	if n, ok := tx.World.URLSizes[u]; ok {
		return n
	}
	return int64(len(u)) << 20
}

func createDownload(s *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	v := in.Values
	node, ds, content, u := keyNodeName.In(v), keyDatastoreID.In(v), keyContentType.In(v), keyURL.In(v)
	if !slices.Contains(downloadContentTypes, content) {
		return "", nil, oneOf("content_type", downloadContentTypes, content)
	}
	d := keyDecompressionAlgorithm.In(v)
	if d != "" && !slices.Contains(decompressions, d) {
		return "", nil, oneOf("decompression_algorithm", decompressions, d)
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return "", nil, fmt.Errorf("Invalid Attribute Value Match: Attribute url Must match http url regex, got: %s", u)
	}
	if _, err := Node(tx, node); err != nil {
		return "", nil, err
	}
	fileName := keyFileName.In(v)
	if fileName == "" {
		// The provider asks Proxmox for the URL's metadata (query-url-metadata).
		pu, err := url.Parse(u)
		if err != nil {
			return "", nil, err
		}
		fileName = path.Base(pu.Path)
	}
	if err := Permit(s, tx, downloadCalls(node, ds, fileName)...); err != nil {
		return "", nil, err
	}
	failed := func(reason string) error {
		return fmt.Errorf("Error downloading file from url: Could not download file '%s', unexpected error: %s", fileName, reason)
	}
	if err := Datastore(tx, node, ds, content); err != nil {
		return "", nil, failed(fmt.Sprintf("received an HTTP 500 response - Reason: storage '%s' is not configured for content-type '%s'", ds, content))
	}
	switch content {
	case "iso":
		if !isoExt.MatchString(fileName) {
			return "", nil, failed("received an HTTP 400 response - Reason: Parameter verification failed. (filename: wrong file extension)")
		}
	case "vztmpl":
		if !vztmplExt.MatchString(fileName) {
			return "", nil, failed("received an HTTP 400 response - Reason: Parameter verification failed. (filename: wrong file extension)")
		}
	}
	// The download task refuses decompression before it downloads.
	if d != "" && content != "iso" {
		return "", nil, failed(fmt.Sprintf("decompression not supported for %s", content))
	}
	id := fmt.Sprintf("%s:%s/%s", ds, content, fileName)
	key := FileKey(tx, node, id)
	if _, exists := tx.State.Files[key]; exists {
		if b, _ := keyOverwriteUnmanaged.In(v).(bool); !b {
			return "", nil, fmt.Errorf("File already exists in the datastore, it was created outside of Terraform or is managed by another resource.: "+
				"File already exists in the datastore: '%s', error: refusing to override existing file '%s'", fileName, fileName)
		}
		// overwriteUnmanaged: the provider deletes the file and downloads again.
	}
	size := URLSize(tx, u)
	tx.State.Files[key] = &engine.StoredFile{ID: id, Node: node, Datastore: ds, ContentType: content, URL: u, Size: size}
	CreateTask(s, tx, TokenDownload)
	return id, map[string]any{"fileName": fileName, "size": float64(size)}, nil
}

// overwrite is the download's overwrite flag (default true).
func overwrite(v map[string]any) bool {
	b, ok := keyOverwrite.In(v).(bool)
	return !ok || b
}

// readDownload reads the file's size from the datastore; a file that is
// gone drops the resource. With overwrite it also asks the URL's size and
// keeps both sizes as private state for the next plan (downloadForceNew).
func readDownload(_ *engine.Server, tx *engine.Tx, obj *engine.Object) (bool, error) {
	f := tx.State.Files[FileKey(tx, keyNodeName.In(obj.Inputs), obj.ID)]
	if f == nil {
		return true, nil
	}
	if obj.Outputs == nil {
		obj.Outputs = map[string]any{}
	}
	obj.Private = map[string]any{"original_state_size": keySize.In(obj.Outputs)}
	obj.Outputs[keySize.Path()] = float64(f.Size)
	if overwrite(obj.Inputs) {
		obj.Private["url_size"] = float64(URLSize(tx, keyURL.In(obj.Inputs)))
	}
	return false, nil
}

// downloadForceNew is the provider's sizeRequiresReplaceModifier: with
// overwrite, a file whose datastore size changed since the last state, or
// whose URL now reports another size (same url), is downloaded again.
func downloadForceNew(s *engine.Server, urn, id string, oldOutputs, olds, news map[string]any) []string {
	if s == nil || !overwrite(news) {
		return nil
	}
	var private map[string]any
	_ = s.Store.Update(func(tx *engine.Tx) error {
		if _, obj := tx.Object(urn, id, TokenDownload); obj != nil {
			private = obj.Private
		}
		return errors.New("read only") // nothing to save
	})
	size, _ := keySize.In(oldOutputs).(float64)
	if orig, ok := private["original_state_size"].(float64); ok && orig != size {
		return []string{"size"}
	}
	if us, ok := private["url_size"].(float64); ok && keyURL.In(olds) == keyURL.In(news) && us != size {
		return []string{"size"}
	}
	return nil
}

func deleteDownload(_ *engine.Server, tx *engine.Tx, obj *engine.Object) error {
	delete(tx.State.Files, FileKey(tx, keyNodeName.In(obj.Inputs), obj.ID))
	return nil
}
