// Command validate renders pgward's kustomize variants offline and decodes every object strictly
// with the official Kubernetes Go types (k8s.io/api, and the Prometheus Operator's types for the
// ServiceMonitor): an unknown field, a wrong type, a duplicate field or an unknown kind fails.
//
//	go run . [-out DIR] KUSTOMIZATION_DIR...
//
// With -out, each variant's rendered YAML is written to DIR/<n>.yaml (for further checks in
// tests/deploy.test.ts). It needs no network: modules are downloaded by `make manifests-tool`.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The kinds pgward's manifests may contain, by apiVersion/kind.
var types = map[string]func() any{
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &monitoringv1.PrometheusRule{} },
}

func validate(dir string) (string, int, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return "", 0, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var problems []string
	for _, r := range m.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			return "", 0, err
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			return "", 0, err
		}
		id := fmt.Sprintf("%s %s/%s", dir, head.Kind, r.GetName())
		newObj, ok := types[head.APIVersion+"/"+head.Kind]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: unexpected kind %s/%s", id, head.APIVersion, head.Kind))
			continue
		}
		obj := newObj()
		strict, err := sigsjson.UnmarshalStrict(data, obj)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", id, err))
		}
		for _, e := range strict {
			problems = append(problems, fmt.Sprintf("%s: %v", id, e))
		}
	}
	if len(problems) > 0 {
		return "", 0, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	out, err := m.AsYaml()
	if err != nil {
		return "", 0, err
	}
	return string(out), m.Size(), nil
}

func main() {
	outDir := flag.String("out", "", "write each variant's rendered YAML to this directory")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: validate [-out DIR] KUSTOMIZATION_DIR...")
		os.Exit(2)
	}
	failed := false
	for i, dir := range flag.Args() {
		text, n, err := validate(dir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "FAIL %v\n", err)
			failed = true
			continue
		}
		fmt.Printf("ok   %s: %d objects decoded strictly\n", dir, n)
		if *outDir != "" {
			if err := os.MkdirAll(*outDir, 0o755); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			name := filepath.Join(*outDir, fmt.Sprintf("%d.yaml", i))
			if err := os.WriteFile(name, []byte("# "+dir+"\n"+text), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
	}
	if failed {
		os.Exit(1)
	}
}
