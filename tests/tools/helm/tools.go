//go:build tools

// Package tools pins the helm binary that the run suite installs the chart with.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
