module sluice.dev/tests/gojson

go 1.22
