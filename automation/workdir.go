package automation

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/sda-platform/sda/config"
)

// saltKey is the stack-file key where the passphrase secrets provider keeps
// its salt.
const saltKey = "encryptionsalt"

// prepareWorkDir writes the engine's copy of the project files: Pulumi.yaml
// as it is, and Pulumi.<stack>.yaml from the project with
//   - the sda:* keys replaced by typed, when given;
//   - the encryption salt kept from the previous copy when the project's
//     file has none, so secrets set earlier still decrypt.
//
// The project's own files are only read.
func prepareWorkDir(projectDir, workDir, stack string, typed *config.Config) error {
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return err
	}
	project, err := os.ReadFile(filepath.Join(projectDir, "Pulumi.yaml"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(workDir, "Pulumi.yaml"), project, 0o600); err != nil {
		return err
	}

	name := "Pulumi." + stack + ".yaml"
	src, err := readStackFile(filepath.Join(projectDir, name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && typed != nil {
			src = map[string]any{}
		} else if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("unknown stack %q: %s does not exist in %s (copy Pulumi.dev.yaml and edit it)", stack, name, projectDir)
		} else {
			return err
		}
	}
	prev, err := readStackFile(filepath.Join(workDir, name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if _, has := src[saltKey]; !has && prev[saltKey] != nil {
		src[saltKey] = prev[saltKey]
	}
	if typed != nil {
		if err := replaceSDAConfig(src, *typed); err != nil {
			return err
		}
	}
	out, err := yaml.Marshal(src)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(workDir, name), out, 0o600)
}

func readStackFile(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// replaceSDAConfig sets each sda:<section> key of the stack file's config
// to the typed section, in the JSON shape the program reads back.
func replaceSDAConfig(stackFile map[string]any, c config.Config) error {
	cfg, _ := stackFile["config"].(map[string]any)
	if cfg == nil {
		cfg = map[string]any{}
	}
	for _, section := range config.Sections {
		delete(cfg, section)
		delete(cfg, config.Namespace+":"+section)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	var sections map[string]any
	if err := json.Unmarshal(b, &sections); err != nil {
		return err
	}
	for k, v := range sections {
		cfg[config.Namespace+":"+k] = v
	}
	stackFile["config"] = cfg
	return nil
}
