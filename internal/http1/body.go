package http1

import (
	"bytes"
	"io"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
)

// Decompressors are pooled because each holds tens of kilobytes of window
// and tables; a sync.Pool lets all workers share them without locks of ours.
var (
	gzipReaders  sync.Pool // *gzip.Reader
	zlibReaders  sync.Pool // io.ReadCloser implementing zlib.Resetter
	flateReaders sync.Pool // io.ReadCloser implementing flate.Resetter
)

// decodeBody decodes raw according to enc, appending at most max bytes to
// dst; src is a reader it may reset to raw (the caller's, so that it is not
// allocated for every body). cut reports that the output was longer than max. err is the
// decoder's error (for example a stream that ends early); out then holds
// what decoded before it. Reading at most max+1 bytes is what keeps a
// compression bomb from costing more than max bytes of memory.
func decodeBody(dst []byte, src *bytes.Reader, enc encoding, raw []byte, max int) (out []byte, cut bool, err error) {
	var r io.Reader
	src.Reset(raw)
	switch enc {
	case encGzip:
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		defer gzipReaders.Put(zr)
		if err := zr.Reset(src); err != nil {
			return nil, false, err
		}
		r = zr
	case encFlate:
		if isZlib(raw) {
			zr, _ := zlibReaders.Get().(io.ReadCloser)
			if zr == nil {
				if zr, err = zlib.NewReader(src); err != nil {
					return nil, false, err
				}
			} else if err = zr.(zlib.Resetter).Reset(src, nil); err != nil {
				zlibReaders.Put(zr)
				return nil, false, err
			}
			defer zlibReaders.Put(zr)
			r = zr
		} else {
			// "deflate" is supposed to be zlib-wrapped, but many servers
			// send raw DEFLATE under that name.
			fr, _ := flateReaders.Get().(io.ReadCloser)
			if fr == nil {
				fr = flate.NewReader(src)
			} else if err = fr.(flate.Resetter).Reset(src, nil); err != nil {
				return nil, false, err // cannot happen: Reset of raw flate only stores src
			}
			defer flateReaders.Put(fr)
			r = fr
		}
	default:
		return raw, false, nil
	}
	// Most bodies inflate less than 4 times: room for that up front saves
	// growing the buffer a dozen times; the limit still bounds it.
	if want := min(4*len(raw), max+1); cap(dst) < want {
		dst = slices.Grow(dst[:0], want)
	}
	out, err = readUpTo(dst, r, max+1)
	if len(out) > max {
		return out[:max], true, nil
	}
	return out, false, err
}

// readUpTo appends what r gives to dst until EOF, an error, or limit bytes.
func readUpTo(dst []byte, r io.Reader, limit int) ([]byte, error) {
	for len(dst) < limit {
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, min(max(cap(dst), 512), limit-len(dst)))
		}
		n, err := r.Read(dst[len(dst):min(cap(dst), limit)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// isZlib reports whether b starts with a zlib header (RFC 1950): method 8
// (deflate), a window of at most 32 KiB, and a header checksum that holds.
func isZlib(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f == 8 && b[0]>>4 <= 7 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

// trimPartialRune drops an incomplete UTF-8 sequence at the end of a body
// that was cut, so that cutting text in the middle of a character does not
// make it look binary.
func trimPartialRune(b []byte) []byte {
	for i := 1; i < utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}
