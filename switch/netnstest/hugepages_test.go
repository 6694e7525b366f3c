package netnstest

import (
	"os"
	"strings"
	"testing"
)

// TestReserveHugepages raises the free huge pages to two more than there
// are, and restore puts vm.nr_hugepages back.
func TestReserveHugepages(t *testing.T) {
	RequirePriv(t)
	before, err := os.ReadFile(nrHugepages)
	if err != nil {
		t.Fatal(err)
	}
	free, err := meminfoField("HugePages_Free:")
	if err != nil {
		t.Fatal(err)
	}
	restore, err := ReserveHugepages(free + 2)
	defer restore()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := meminfoField("HugePages_Free:"); got < free+2 {
		t.Fatalf("HugePages_Free %d, want >= %d", got, free+2)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(nrHugepages)
	if strings.TrimSpace(string(after)) != strings.TrimSpace(string(before)) {
		t.Fatalf("vm.nr_hugepages %s after restore, was %s", after, before)
	}
	// Asking for no more than is free changes nothing.
	restore, err = ReserveHugepages(0)
	if err != nil || restore() != nil {
		t.Fatalf("ReserveHugepages(0): %v", err)
	}
}
