package saslssl

import (
	"fmt"
	"maps"
	"strings"
	"testing"
)

// parseEnvFile reads an environment file the way systemd reads
// EnvironmentFile= (its parse_env_file): KEY=value lines; '#' or ';'
// starts a comment line; whitespace around the key and before the value is
// dropped; a value may be in single quotes (literal), in double quotes
// (where a backslash escapes '"', '\', '`' and '$' and is kept before
// anything else), or bare (where a backslash escapes the next character and
// trailing whitespace is dropped); a backslash before a newline continues
// the value on the next line. Nothing is expanded.
func parseEnvFile(content string) (map[string]string, error) {
	const (
		preKey = iota
		key
		preValue
		value
		valueEscape
		singleQuote
		doubleQuote
		doubleQuoteEscape
		comment
		commentEscape
	)
	env := map[string]string{}
	state := preKey
	var k, v strings.Builder
	trailingWS := 0 // spaces at the end of v, in a bare value
	line := 1
	assign := func() error {
		name := strings.TrimRight(k.String(), " \t")
		if name == "" {
			return fmt.Errorf("line %d: empty variable name", line)
		}
		val := v.String()
		val = val[:len(val)-trailingWS]
		env[name] = val
		k.Reset()
		v.Reset()
		trailingWS = 0
		return nil
	}
	for _, c := range content + "\n" {
		switch state {
		case preKey:
			switch {
			case c == '#' || c == ';':
				state = comment
			case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			default:
				state = key
				k.WriteRune(c)
			}
		case key:
			switch c {
			case '\n', '\r':
				return nil, fmt.Errorf("line %d: no '=' after %q", line, k.String())
			case '=':
				state = preValue
			default:
				k.WriteRune(c)
			}
		case preValue:
			switch c {
			case ' ', '\t':
			case '\n', '\r':
				if err := assign(); err != nil {
					return nil, err
				}
				state = preKey
			case '\'':
				state = singleQuote
			case '"':
				state = doubleQuote
			case '\\':
				state = valueEscape
			default:
				state = value
				v.WriteRune(c)
			}
		case value:
			switch c {
			case '\n', '\r':
				if err := assign(); err != nil {
					return nil, err
				}
				state = preKey
			case '\\':
				state = valueEscape
				trailingWS = 0
			default:
				v.WriteRune(c)
				if c == ' ' || c == '\t' {
					trailingWS++
				} else {
					trailingWS = 0
				}
			}
		case valueEscape:
			state = value
			if c != '\n' && c != '\r' {
				v.WriteRune(c)
			}
		case singleQuote:
			if c == '\'' {
				state = preValue
			} else {
				v.WriteRune(c)
			}
		case doubleQuote:
			switch c {
			case '"':
				state = preValue
			case '\\':
				state = doubleQuoteEscape
			default:
				v.WriteRune(c)
			}
		case doubleQuoteEscape:
			state = doubleQuote
			switch {
			case strings.ContainsRune("\"\\`$", c):
				v.WriteRune(c)
			case c == '\n' || c == '\r':
			default:
				v.WriteRune('\\')
				v.WriteRune(c)
			}
		case comment:
			switch c {
			case '\\':
				state = commentEscape
			case '\n', '\r':
				state = preKey
			}
		case commentEscape:
			state = comment
		}
		if c == '\n' {
			line++
		}
	}
	if state != preKey {
		return nil, fmt.Errorf("unterminated quote or escape at the end")
	}
	return env, nil
}

func TestParseEnvFile(t *testing.T) {
	got, err := parseEnvFile(`# comment
; another
A=plain value  
  B = spaced
C="quoted \"x\" back\\slash \$dollar \n kept"
D='single "q" \n'
E=
F=bare\ escaped\\
G="multi\
line"
H=a"b"c
`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"A": "plain value",
		"B": "spaced",
		"C": `quoted "x" back\slash $dollar \n kept`,
		"D": `single "q" \n`,
		"E": "",
		"F": `bare escaped\`,
		"G": "multiline",
		"H": `a"b"c`, // quotes count only at the start of a value
	}
	if !maps.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	for _, bad := range []string{"NOEQUALS\n", `A="open` + "\n"} {
		if _, err := parseEnvFile(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
