package awssim

import (
	"slices"
	"sort"
)

// ordered is a map kept in key order, so that Describe calls page through
// it with a cursor (the last key returned) instead of an offset: a resource
// created or deleted between two pages then neither shifts nor repeats the
// others, as with AWS's opaque tokens.
type ordered[T any] struct {
	keys []string
	m    map[string]T
}

func newOrdered[T any]() ordered[T] { return ordered[T]{m: map[string]T{}} }

func (o *ordered[T]) get(k string) (T, bool) {
	v, ok := o.m[k]
	return v, ok
}

func (o *ordered[T]) put(k string, v T) {
	if _, ok := o.m[k]; !ok {
		// Ids come from counters, so appending is the common case.
		if n := len(o.keys); n == 0 || o.keys[n-1] < k {
			o.keys = append(o.keys, k)
		} else {
			i := sort.SearchStrings(o.keys, k)
			o.keys = slices.Insert(o.keys, i, k)
		}
	}
	o.m[k] = v
}

func (o *ordered[T]) del(k string) {
	if _, ok := o.m[k]; !ok {
		return
	}
	delete(o.m, k)
	i := sort.SearchStrings(o.keys, k)
	o.keys = slices.Delete(o.keys, i, i+1)
}

func (o *ordered[T]) len() int { return len(o.keys) }

// pageKeys is what a Describe call pages through: the keys after cursor,
// of all or of those asked for, each of which must exist (else the error
// notFound makes of the first that does not).
func (o *ordered[T]) pageKeys(ids []string, cursor string, notFound func(id string) error) ([]string, error) {
	if len(ids) == 0 {
		return o.from(cursor), nil
	}
	for _, id := range ids {
		if _, ok := o.m[id]; !ok {
			return nil, notFound(id)
		}
	}
	return afterCursor(ids, cursor), nil
}

// from returns the keys after cursor ("" = from the start).
func (o *ordered[T]) from(cursor string) []string {
	if cursor == "" {
		return o.keys
	}
	i := sort.Search(len(o.keys), func(i int) bool { return o.keys[i] > cursor })
	return o.keys[i:]
}

// values returns all values in key order.
func (o *ordered[T]) values() []T {
	out := make([]T, 0, len(o.keys))
	for _, k := range o.keys {
		out = append(out, o.m[k])
	}
	return out
}
