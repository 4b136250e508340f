//go:build tools

// Package tools pins toxiproxy, the TCP fault proxy that the faults suite
// puts between sluice and the API server or a Git remote.
package tools

import (
	_ "github.com/Shopify/toxiproxy/v2/cmd/cli"    // toxiproxy-cli
	_ "github.com/Shopify/toxiproxy/v2/cmd/server" // toxiproxy-server
)
