package main

import (
	"path/filepath"
	"testing"
)

// The fleet example runs one configuration on a StatefulSet: fleet mode on, the instance name
// left to the pod's name, several pipelines, and a PodDisruptionBudget of one.
func TestKubernetesFleetStatefulSet(t *testing.T) {
	parent := kubeObjects(t, filepath.Join(repoRoot, "deploy", "kubernetes"))
	byKind := kubeObjects(t, filepath.Join(repoRoot, "deploy", "kubernetes", "fleet"))
	cfg := checkWorkload(t, byKind, "StatefulSet", "cdcd-fleet", parent)
	if !cfg.Fleet.Enabled || cfg.Fleet.Group == "" || cfg.Fleet.Instance != "" {
		t.Errorf("fleet section %+v: want enabled, a group, and the instance left to the pod name", cfg.Fleet)
	}
	if len(cfg.Pipelines) < 2 {
		t.Errorf("%d pipelines: a fleet spreads several", len(cfg.Pipelines))
	}
	st := byKind["StatefulSet"]["cdcd-fleet"]
	if st.Spec.Replicas == nil || *st.Spec.Replicas < 2 {
		t.Errorf("replicas %v: run at least two instances", st.Spec.Replicas)
	}
	svc, ok := byKind["Service"][st.Spec.ServiceName]
	if !ok || !selects(matchLabels(svc.Spec.Selector), st.Spec.Template.Metadata.Labels) {
		t.Errorf("no Service %q selecting the StatefulSet's pods", st.Spec.ServiceName)
	}
	pdb, ok := byKind["PodDisruptionBudget"]["cdcd-fleet"]
	if !ok || !selects(matchLabels(pdb.Spec.Selector), st.Spec.Template.Metadata.Labels) || pdb.Spec.MaxUnavailable == nil {
		t.Errorf("no PodDisruptionBudget cdcd-fleet with maxUnavailable selecting the pods: %+v", pdb.Spec)
	}
	if sm, ok := parent["ServiceMonitor"]["cdcd"]; !ok || !selects(matchLabels(sm.Spec.Selector), svc.Metadata.Labels) {
		t.Errorf("the ServiceMonitor cdcd does not select the Service %s", svc.Metadata.Name)
	}
}
