{{/*
Labels. Every object carries the three labels of manifests/ (name, component, part-of; the
selectors use name + component, so they match kustomize's and survive a switch between the two)
plus Helm's own (chart, managed-by, instance), which the render test strips before comparing.
*/}}
{{- define "aimctl.labels" -}}
app.kubernetes.io/name: aimctl
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: aimctl
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{- define "aimctl.selectorLabels" -}}
app.kubernetes.io/name: aimctl
app.kubernetes.io/component: controller-manager
{{- end }}

{{/*
The rules of manifests/rbac/role.yaml (the copy in files/rbac/role.yaml), split by scope:
"cluster" the resources no Role can grant (cluster-scoped), "namespaced" the others.
*/}}
{{- define "aimctl.clusterScoped" -}}
storageclasses tokenreviews subjectaccessreviews
{{- end }}

{{- define "aimctl.rules" -}}
{{- $role := .root.Files.Get "files/rbac/role.yaml" | fromYaml }}
{{- $cluster := splitList " " (include "aimctl.clusterScoped" .root) }}
{{- $rules := list }}
{{- range $role.rules }}
{{- $isCluster := has (first .resources) $cluster }}
{{- if or (eq $.scope "all") (and (eq $.scope "cluster") $isCluster) (and (eq $.scope "namespaced") (not $isCluster)) }}
{{- $rules = append $rules . }}
{{- end }}
{{- end }}
{{- toYaml $rules }}
{{- end }}

{{/*
A file of manifests/ copied under files/, with the namespace aimctl-system replaced by the
release namespace (metadata.namespace, the ServiceMonitor's namespaceSelector, the admission
policy's paramRef, the alerts' matchers).
*/}}
{{- define "aimctl.file" -}}
{{- .root.Files.Get .path | replace "aimctl-system" .root.Release.Namespace }}
{{- end }}
