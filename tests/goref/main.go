// The reference for the relay's price field reader (json_fields,
// common/jsonread.c): bodies decoded the way the old gateway (new-api, Go)
// decodes them, with encoding/json.Unmarshal into a struct that has a
// field for each dotted path a price reads. Standard library only;
// Debian's golang-go (1.19) builds it offline.
//
// Reads cases from stdin and writes one line for each:
//
//	P <n>\n  then n paths, one a line
//	B <len>\n then len bytes of body, then \n
//
// and a line "F" has the answers so far written out.
//
// The answer is "error" when Unmarshal refuses the body (a syntax error,
// or a top-level value that is neither an object nor null), else "ok"
// followed, for each path, by " -" (absent), " L" (a value the relay
// does not hold: a string of more than 64 bytes or with a NUL in it) or
// " =" and the value's bytes in hex, normalised as the relay prints
// scalars: strings as decoded, numbers as the relay prints them (10,
// 10.0 and 1e1 are "10"), true and false.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
)

const valueMax = 64 // JSON_SCALAR_MAX

// Leaf is a field a price reads. As a field that is no pointer, a null
// leaves it as it was; an object or an array leaves no scalar.
type Leaf struct {
	Found bool
	Other bool
	Val   string
}

func (l *Leaf) UnmarshalJSON(b []byte) error {
	switch b[0] {
	case 'n':
		return nil
	case '{', '[':
		*l = Leaf{}
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if len(s) > valueMax || strings.IndexByte(s, 0) >= 0 {
			*l = Leaf{Found: true, Other: true}
		} else {
			*l = Leaf{Found: true, Val: s}
		}
	case 't', 'f':
		*l = Leaf{Found: true, Val: string(b)}
	default:
		*l = Leaf{Found: true, Val: numberText(string(b))}
	}
	return nil
}

// Mixed is a path that is both a field and the way to other fields ("a"
// and "a.b"): an object is decoded into Inner (a struct, merging as Go
// merges), anything else is the leaf's.
type Mixed struct {
	Leaf  Leaf
	Inner interface{} // a pointer to the struct of its children
}

func (m *Mixed) UnmarshalJSON(b []byte) error {
	switch b[0] {
	case 'n':
		return nil
	case '{':
		m.Leaf = Leaf{}
		err := json.Unmarshal(b, m.Inner)
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil // read on, as Unmarshal does
		}
		return err
	case '[':
		m.Leaf = Leaf{}
		return nil
	}
	return m.Leaf.UnmarshalJSON(b)
}

// The relay's print of a number: an integer below 1e15 as one, else %.15g.
func numberText(s string) string {
	f, _ := strconv.ParseFloat(s, 64) // out of range: +-Inf, as strtod
	if f > -1e15 && f < 1e15 && f == math.Trunc(f) {
		return strconv.FormatInt(int64(f), 10)
	}
	if math.IsInf(f, 1) {
		return "inf"
	}
	if math.IsInf(f, -1) {
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', 15, 64)
}

type node struct {
	seg      string
	children []*node
	leaf     bool
	t        reflect.Type
}

func pathOK(p string) bool {
	segs := strings.Split(p, ".")
	if len(segs) > 32 {
		return false
	}
	for _, s := range segs {
		if len(s) == 0 || len(s) > valueMax {
			return false
		}
		for _, c := range []byte(s) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
				c >= '0' && c <= '9' || c == '_') {
				return false
			}
		}
	}
	return true
}

// The node of a path; paths equal without case are one field.
func add(root *node, p string) *node {
	n := root
	for _, s := range strings.Split(p, ".") {
		var c *node
		for _, x := range n.children {
			if strings.EqualFold(x.seg, s) {
				c = x
				break
			}
		}
		if c == nil {
			c = &node{seg: s}
			n.children = append(n.children, c)
		}
		n = c
	}
	n.leaf = true
	return n
}

var leafType = reflect.TypeOf(Leaf{})
var mixedType = reflect.TypeOf(Mixed{})

// The struct of a node's children, each with its json tag.
func structOf(n *node) reflect.Type {
	fields := make([]reflect.StructField, len(n.children))
	for i, c := range n.children {
		var t reflect.Type
		switch {
		case len(c.children) == 0:
			t = leafType
		case c.leaf:
			t = mixedType
		default:
			t = structOf(c)
		}
		c.t = t
		fields[i] = reflect.StructField{
			Name: fmt.Sprintf("F%d", i),
			Type: t,
			Tag:  reflect.StructTag(fmt.Sprintf(`json:"%s"`, c.seg)),
		}
	}
	return reflect.StructOf(fields)
}

// A Mixed field's Inner, made before decoding, all the way down.
func prepare(v reflect.Value, n *node) {
	for i, c := range n.children {
		f := v.Field(i)
		switch {
		case len(c.children) == 0:
		case c.leaf:
			inner := reflect.New(structOf(c))
			prepare(inner.Elem(), c)
			f.Addr().Interface().(*Mixed).Inner = inner.Interface()
		default:
			prepare(f, c)
		}
	}
}

func collect(v reflect.Value, n *node, out map[*node]Leaf) {
	for i, c := range n.children {
		f := v.Field(i)
		switch {
		case len(c.children) == 0:
			out[c] = f.Interface().(Leaf)
		case c.leaf:
			m := f.Addr().Interface().(*Mixed)
			out[c] = m.Leaf
			collect(reflect.ValueOf(m.Inner).Elem(), c, out)
		default:
			collect(f, c, out)
		}
	}
}

func decode(paths []string, body []byte) string {
	root := &node{}
	nodes := make([]*node, len(paths))
	for i, p := range paths {
		if pathOK(p) {
			nodes[i] = add(root, p)
		}
	}
	v := reflect.New(structOf(root))
	prepare(v.Elem(), root)
	if err := json.Unmarshal(body, v.Interface()); err != nil {
		var te *json.UnmarshalTypeError
		top := strings.TrimLeft(string(body), " \t\r\n")
		// a type error inside an object is read past; the body's own
		// kind is not
		if !errors.As(err, &te) || !strings.HasPrefix(top, "{") {
			return "error"
		}
	}
	vals := map[*node]Leaf{}
	collect(v.Elem(), root, vals)
	var b strings.Builder
	b.WriteString("ok")
	for _, n := range nodes {
		l, ok := vals[n]
		switch {
		case n == nil || !ok || !l.Found:
			b.WriteString(" -")
		case l.Other:
			b.WriteString(" L")
		default:
			b.WriteString(" =" + hex.EncodeToString([]byte(l.Val)))
		}
	}
	return b.String()
}

// One header line: "P 3", or "F" (flush the answers so far); io.EOF at
// the end.
func header(in *bufio.Reader, letter byte) (int, error) {
	line, err := in.ReadString('\n')
	if err != nil {
		if err == io.EOF && line == "" {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("short header %q", line)
	}
	line = strings.TrimSuffix(line, "\n")
	if line == "F" {
		return -1, nil
	}
	if len(line) < 3 || line[0] != letter || line[1] != ' ' {
		return 0, fmt.Errorf("bad header %q", line)
	}
	return strconv.Atoi(line[2:])
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for {
		n, err := header(in, 'P')
		if err == io.EOF {
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "goref:", err)
			os.Exit(2)
		}
		if n < 0 {
			out.Flush()
			continue
		}
		paths := make([]string, n)
		for i := range paths {
			s, err := in.ReadString('\n')
			if err != nil {
				fmt.Fprintln(os.Stderr, "goref: bad path:", err)
				os.Exit(2)
			}
			paths[i] = strings.TrimSuffix(s, "\n")
		}
		blen, err := header(in, 'B')
		if err != nil || blen < 0 {
			fmt.Fprintln(os.Stderr, "goref: bad body header:", err)
			os.Exit(2)
		}
		body := make([]byte, blen+1)
		if _, err := io.ReadFull(in, body); err != nil {
			fmt.Fprintln(os.Stderr, "goref: short body:", err)
			os.Exit(2)
		}
		fmt.Fprintln(out, decode(paths, body[:blen]))
	}
}
