package affinity

import (
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSetAndList(t *testing.T) {
	s, err := Set(3, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	got := List(&s)
	if len(got) != 3 || got[0] != 0 || got[1] != 3 || got[2] != 7 {
		t.Fatalf("List = %v, want [0 3 7]", got)
	}
	for _, bad := range []int{-1, MaxCPU} {
		if _, err := Set(bad); err == nil {
			t.Errorf("Set(%d) did not fail", bad)
		}
	}
}

// TestSetAllThreads narrows every thread of the test process to one CPU,
// while goroutines keep the runtime starting threads, and checks each
// thread's mask; then it restores the original masks.
func TestSetAllThreads(t *testing.T) {
	orig, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	cpus := List(&orig)
	if len(cpus) < 2 {
		t.Skip("needs 2 CPUs")
	}
	defer SetAllThreads(&orig)
	one, _ := Set(cpus[0])
	// Locked goroutines force new OS threads while the masks change.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			<-stop
		}()
	}
	if err := SetAllThreads(&one); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	err = EachThread(func(tid int) error {
		var m unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &m); err != nil {
			return err
		}
		if m != one {
			t.Errorf("thread %d has CPUs %v, want [%d]", tid, List(&m), cpus[0])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
