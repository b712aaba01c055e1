package proxmox_test

import (
	"testing"

	"github.com/sda-platform/sda/internal/simulator/simtest"
)

func TestMain(m *testing.M) { simtest.Main(m) }
