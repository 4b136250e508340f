// Command gojson is the reference for sl_manifest_json_go: it reads one JSON
// document per line, decodes it as k8s.io/apimachinery decodes unstructured
// objects (numbers as int64 when they fit, else float64) and prints Go's
// json.Marshal of the result, one line per document ("ERROR <reason>" for a
// line Go refuses).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// convert replaces every json.Number by int64 or float64, as
// k8s.io/apimachinery/pkg/util/json does.
func convert(v interface{}) (interface{}, error) {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i, nil
		}
		f, err := t.Float64()
		if err != nil {
			return nil, fmt.Errorf("unable to convert json.Number %v to int64 or float64", t)
		}
		return f, nil
	case map[string]interface{}:
		for k, e := range t {
			c, err := convert(e)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
	case []interface{}:
		for i, e := range t {
			c, err := convert(e)
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
	}
	return v, nil
}

func marshal(line []byte) ([]byte, error) {
	var v interface{}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the document")
	}
	v, err := convert(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func main() {
	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte("\n"))
			if b, merr := marshal(line); merr != nil {
				fmt.Fprintf(out, "ERROR %v\n", merr)
			} else {
				out.Write(b)
				out.WriteByte('\n')
			}
		}
		if err != nil {
			if err != io.EOF {
				fmt.Fprintln(os.Stderr, "gojson:", err)
				os.Exit(1)
			}
			return
		}
	}
}
