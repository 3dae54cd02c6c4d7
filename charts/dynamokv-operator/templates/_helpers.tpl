{{/*
Names and labels shared by every template of the chart.
*/}}

{{- define "dynamokv-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The full name: release-chart, or just the release name when it already contains the chart name,
cut to 63 characters because Kubernetes names and label values stop there.
*/}}
{{- define "dynamokv-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "dynamokv-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the operator pods; they never change between upgrades. */}}
{{- define "dynamokv-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dynamokv-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dynamokv-operator.labels" -}}
helm.sh/chart: {{ include "dynamokv-operator.chart" . }}
{{ include "dynamokv-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: dynamokv
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "dynamokv-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dynamokv-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "dynamokv-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "dynamokv-operator.nodeImage" -}}
{{- printf "%s:%s" .Values.nodeImage.repository (default .Chart.AppVersion .Values.nodeImage.tag) -}}
{{- end -}}

{{/*
The permissions the operator needs in every namespace it manages, as RBAC rules. The same list
goes into the ClusterRole (all namespaces) or into one Role per watched namespace, so the two
modes can never drift apart. Each rule names only the verbs the operator uses:
- DynamoClusters: it reads them, sets finalizers/owner references (update on the finalizers
  subresource), writes status, and reverts a refused scale through the scale subresource.
- The objects it owns (StatefulSets, Services, ConfigMaps, PDBs, ServiceMonitors): full life
  cycle through server-side apply (patch), plus delete when a feature is switched off.
- Secrets: created once with generated credentials and never deleted by the operator (garbage
  collection follows the owner reference), so no delete.
- Pods: read, and delete one at a time for rolling updates. PVCs: read, and delete on scale-down
  when the cluster's policy says so. Events: create and patch (core and events.k8s.io).
*/}}
{{- define "dynamokv-operator.managedRules" -}}
- apiGroups: ["dynamokv.io"]
  resources: ["dynamoclusters"]
  verbs: ["get", "list", "watch", "update", "patch"]
- apiGroups: ["dynamokv.io"]
  resources: ["dynamoclusters/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["dynamokv.io"]
  resources: ["dynamoclusters/scale"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["dynamokv.io"]
  resources: ["dynamoclusters/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "update", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "delete"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "list", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
