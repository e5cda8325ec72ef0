package record

// Header is one HTTP header field as it appeared on the wire. Order is kept
// so that repeated headers can be joined in the order they were sent.
type Header struct {
	Name  string
	Value string
}
