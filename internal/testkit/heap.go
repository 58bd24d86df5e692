package testkit

import "runtime"

// HeapAfterGC returns the runtime's memory statistics once garbage is
// collected (twice, so that what the first collection's sweep freed is
// gone too). HeapAlloc is then the live heap, deterministic for given code;
// HeapInuse adds the unused room of the spans that hold it. Tests that
// assert memory per item compare two readings around the items.
func HeapAfterGC() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}
