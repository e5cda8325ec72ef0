package events

import (
	"embed"
	"io/fs"
	"sort"
)

// The sample payloads, one case per file. README.md lists the ids they use,
// so tests can build a simulated account around them.
//
//go:embed *.json
var samples embed.FS

// Sample returns the sample payload in file name (e.g.
// "ec2-state-running.json"). It panics when there is none: names come from
// Samples or are literals in tests, so a miss is a programming error.
func Sample(name string) []byte {
	b, err := samples.ReadFile(name)
	if err != nil {
		panic("events: no sample " + name)
	}
	return b
}

// Samples returns the names of all sample payloads, sorted.
func Samples() []string {
	names, err := fs.Glob(samples, "*.json")
	if err != nil {
		panic(err) // only for a malformed pattern
	}
	sort.Strings(names)
	return names
}
