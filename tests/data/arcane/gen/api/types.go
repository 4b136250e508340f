// Package api declares the three resources of the arcane-crd chart v0.0.9
// (the Go types of SneaksAndData/arcane-operator pkg/apis/streaming/v1, with
// the markers it publishes), so that controller-gen v0.19.0 renders their
// schemas as the chart was rendered. render.py turns its output into
// ../arcane-crds.yaml. Only the fields and markers matter here.
//
// +groupName=streaming.sneaksanddata.com
// +versionName=v1
// +kubebuilder:object:generate=false
package api

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Phase of a StreamClass or a BackfillRequest.
// +kubebuilder:validation:Enum=Pending;Ready;Failed;Stopped
type Phase string

// StreamClassSpec names the stream kind a class registers.
type StreamClassSpec struct {
	// API group of the stream kind (optional in the schema).
	APIGroupRef string `json:"apiGroupRef,omitempty"`
	// Version of the stream kind within its group.
	APIVersion string `json:"apiVersion"`
	// Kind of the stream objects.
	KindRef string `json:"kindRef"`
	// Plural resource name of the stream kind.
	PluralName string `json:"pluralName"`
	// Stream spec fields that name Secrets for the job.
	SecretRefs []string `json:"secretRefs,omitempty"`
}

// StreamClassStatus is what the operator observed of a class.
type StreamClassStatus struct {
	// Phase of the class.
	Phase Phase `json:"phase,omitempty"`
	// Latest observations.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// StreamClass registers a stream kind with the operator.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=sc
// +kubebuilder:printcolumn:name="ApiGroupRef",type=string,JSONPath=`.spec.apiGroupRef`
// +kubebuilder:printcolumn:name="ApiVersion",type=string,JSONPath=`.spec.apiVersion`
// +kubebuilder:printcolumn:name="KindRef",type=string,JSONPath=`.spec.kindRef`
// +kubebuilder:printcolumn:name="PluralName",type=string,JSONPath=`.spec.pluralName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
type StreamClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              StreamClassSpec   `json:"spec,omitempty"`
	Status            StreamClassStatus `json:"status,omitempty"`
}

// StreamingJobTemplate holds the Job a stream runs: spec is a whole batch/v1
// Job, so a bare Job spec is pruned to nothing.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=sjt
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="MemoryLimit",type=string,JSONPath=`.spec.spec.template.spec.containers[0].resources.limits.memory`
// +kubebuilder:printcolumn:name="CpuLimit",type=string,JSONPath=`.spec.spec.template.spec.containers[0].resources.limits.cpu`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.spec.template.spec.containers[0].image`
type StreamingJobTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              batchv1.Job `json:"spec,omitempty"`
}

// BackfillRequestSpec names the stream to backfill.
type BackfillRequestSpec struct {
	// StreamClass of the stream.
	StreamClass string `json:"streamClass"`
	// Name of the stream, in the namespace of the request.
	StreamId string `json:"streamId"`
	// Set once the backfill has run.
	// +kubebuilder:default=false
	Completed bool `json:"completed,omitempty"`
	// Free overrides for the backfill job.
	// +nullable
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	Payload *runtime.RawExtension `json:"payload,omitempty"`
}

// BackfillRequestStatus is what the operator observed of a request.
type BackfillRequestStatus struct {
	// Phase of the request.
	Phase Phase `json:"phase,omitempty"`
	// Latest observations.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BackfillRequest asks for one backfill run of a stream.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=bfr
// +kubebuilder:printcolumn:name="StreamClass",type=string,JSONPath=`.spec.streamClass`
// +kubebuilder:printcolumn:name="StreamId",type=string,JSONPath=`.spec.streamId`
// +kubebuilder:printcolumn:name="Completed",type=string,JSONPath=`.spec.completed`
// +kubebuilder:selectablefield:JSONPath=.spec.completed
// +kubebuilder:selectablefield:JSONPath=.spec.streamId
type BackfillRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BackfillRequestSpec   `json:"spec,omitempty"`
	Status            BackfillRequestStatus `json:"status,omitempty"`
}
