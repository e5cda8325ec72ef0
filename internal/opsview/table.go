// Package opsview answers the operator's questions about a stack without
// a dashboard: which load balancers can be mirrored and why not
// (Connections), whether the account is ready for a deploy (Preflight),
// and whether a deployed stack mirrors and traffic arrives (Status). Each
// is gathered through the inventory reader and the AWS clients, decided by
// pure functions, and printed as aligned tables or JSON.
package opsview

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Table is rows of cells under a header, printed with aligned columns.
type Table struct {
	Title  string
	Header []string
	Rows   [][]string
}

// Add appends a row.
func (t *Table) Add(cells ...string) { t.Rows = append(t.Rows, cells) }

// Write prints the table: its title, then the header and rows with
// columns two spaces apart, "-" for an empty cell. A table without rows
// prints its title and "(none)".
func (t *Table) Write(w io.Writer) error {
	var b strings.Builder
	if t.Title != "" {
		b.WriteString(t.Title + "\n")
	}
	if len(t.Rows) == 0 {
		b.WriteString("(none)\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	width := make([]int, len(t.Header))
	cell := func(row []string, i int) string {
		if i >= len(row) || row[i] == "" {
			return "-"
		}
		return row[i]
	}
	for i, h := range t.Header {
		width[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.Rows {
		for i := range t.Header {
			width[i] = max(width[i], utf8.RuneCountInString(cell(r, i)))
		}
	}
	line := func(row []string, header bool) {
		for i := range t.Header {
			c := t.Header[i]
			if !header {
				c = cell(row, i)
			}
			if i == len(t.Header)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c + strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)+2))
		}
		b.WriteString("\n")
	}
	line(nil, true)
	for _, r := range t.Rows {
		line(r, false)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTables prints tables one after another, a blank line between.
func writeTables(w io.Writer, tables ...*Table) error {
	for i, t := range tables {
		if i > 0 {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
		}
		if err := t.Write(w); err != nil {
			return err
		}
	}
	return nil
}
