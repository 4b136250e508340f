// flux-ssa applies a directory of manifests the way Flux's kustomize-controller
// does, with Flux's apply engine (github.com/fluxcd/pkg/ssa): objects read from
// every YAML file under the directory, owner labels set, ApplyAllStaged
// (cluster definitions and namespaces first, waited on, then the rest), with
// kustomize-controller's apply options. One run is one reconcile; running it
// again on the same files is a no-change pass. bench/sync-peers runs it beside
// sluice and kubectl.
//
// usage: flux-ssa -kubeconfig FILE -dir DIR [-name NAME] [-namespace NS]
//
//	[-concurrency N] [-qps Q] [-burst B]
//
// It prints one line: "created N configured N unchanged N ms N" (stdout).
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// The names kustomize-controller uses for its field manager and labels.
const (
	fieldManager = "kustomize-controller"
	ownerGroup   = "kustomize.toolkit.fluxcd.io"
)

func readObjects(dir string) ([]*unstructured.Unstructured, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var objects []*unstructured.Unstructured
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		objs, err := ssautils.ReadObjects(r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		objects = append(objects, objs...)
	}
	return objects, nil
}

func run() error {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file")
	dir := flag.String("dir", "", "directory of manifests")
	name := flag.String("name", "bench", "name of the Kustomization the objects belong to (owner labels)")
	namespace := flag.String("namespace", "flux-system", "its namespace (owner labels)")
	// kustomize-controller's --concurrent-ssa default
	concurrency := flag.Int("concurrency", 4, "concurrent dry-run applies")
	// Flux's controllers rate-limit their client; a negative QPS turns
	// client-go's limiter off, so that the engine itself is measured
	qps := flag.Float64("qps", -1, "client QPS limit (negative: none)")
	burst := flag.Int("burst", 300, "client burst")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS = float32(*qps)
	cfg.Burst = *burst
	cfg.UserAgent = "flux-ssa-bench/" + rest.DefaultKubernetesUserAgent()
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return err
	}
	kube, err := client.New(cfg, client.Options{HTTPClient: httpClient, Mapper: mapper})
	if err != nil {
		return err
	}
	poller := polling.NewStatusPoller(kube, mapper, polling.Options{})
	rm := ssa.NewResourceManager(kube, poller, ssa.Owner{Field: fieldManager, Group: ownerGroup})
	rm.SetConcurrency(*concurrency)

	start := time.Now()
	objects, err := readObjects(*dir)
	if err != nil {
		return err
	}
	rm.SetOwnerLabels(objects, *name, *namespace)

	// kustomize-controller's options (Force off, its exclusion and
	// cleanup settings)
	opts := ssa.DefaultApplyOptions()
	opts.Force = false
	opts.ExclusionSelector = map[string]string{ownerGroup + "/reconcile": "disabled"}
	opts.IfNotPresentSelector = map[string]string{ownerGroup + "/ssa": "IfNotPresent"}
	opts.Cleanup = ssa.ApplyCleanupOptions{
		Annotations: []string{"kubectl.kubernetes.io/last-applied-configuration", ownerGroup + "/checksum"},
		FieldManagers: []ssa.FieldManager{
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationApply},
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: "before-first-apply", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: fieldManager, OperationType: metav1.ManagedFieldsOperationUpdate},
		},
		Exclusions: map[string]string{ownerGroup + "/ssa": "Ignore"},
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	cs, err := rm.ApplyAllStaged(ctx, objects, opts)
	if err != nil {
		return err
	}
	counts := map[ssa.Action]int{}
	for _, e := range cs.Entries {
		counts[e.Action]++
	}
	fmt.Printf("created %d configured %d unchanged %d ms %d\n", counts[ssa.CreatedAction],
		counts[ssa.ConfiguredAction], counts[ssa.UnchangedAction], time.Since(start).Milliseconds())
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "flux-ssa: %v\n", err)
		os.Exit(1)
	}
}
