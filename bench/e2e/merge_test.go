package e2e

import "testing"

func TestMergeRound(t *testing.T) {
	rep := func(mpps float64) Rep { return Rep{RxMpps: mpps} }
	var all []CaseResult
	all = mergeRound(all, []CaseResult{
		{Case: "bridge", Size: 64, Flows: 1, Reps: []Rep{rep(0.4)}},
		{Case: "bridge", Size: 64, Flows: 1000, Reps: []Rep{rep(0.5)}},
	})
	all = mergeRound(all, []CaseResult{{Case: "vswitchd", Size: 64, Flows: 1, Reps: []Rep{rep(0.3)}, Diagnostics: "d1"}})
	all = mergeRound(all, []CaseResult{
		{Case: "bridge", Size: 64, Flows: 1, Reps: []Rep{rep(0.41)}},
		{Case: "bridge", Size: 64, Flows: 1000, Error: "sink received 0", Warnings: []string{"w"}},
	})
	all = mergeRound(all, []CaseResult{{Case: "vswitchd", Size: 64, Flows: 1, Reps: []Rep{rep(0.32)}, Diagnostics: "d2"}})
	all = mergeRound(all, []CaseResult{{Case: "bridge", Size: 64, Flows: 1000, Error: "sink received 0"}})
	if len(all) != 3 {
		t.Fatalf("%d results, want 3 (one per case, size and flow count): %+v", len(all), all)
	}
	b1, b1000, v := all[0], all[1], all[2]
	if len(b1.Reps) != 2 || b1.Reps[1].RxMpps != 0.41 || b1.Error != "" {
		t.Errorf("bridge 1 flow: %+v", b1)
	}
	if len(b1000.Reps) != 1 || b1000.Error != "sink received 0" || len(b1000.Warnings) != 1 {
		t.Errorf("bridge 1000 flows (one error, said once): %+v", b1000)
	}
	if v.Case != "vswitchd" || len(v.Reps) != 2 || v.Diagnostics != "d2" {
		t.Errorf("vswitchd: %+v (want 2 reps, the latest diagnostics)", v)
	}
}
