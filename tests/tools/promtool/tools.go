//go:build tools

// Package tools pins promtool, which the tests use to lint /metrics and to
// check and unit-test the alerting rules of deploy/monitoring.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
