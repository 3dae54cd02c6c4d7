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
modes can never drift apart. Each rule names only the verbs the operator uses (operator/src):
- DynamoClusters: it watches them and writes their status (merge patch on the status
  subresource); update on the finalizers subresource lets it set owner references with
  blockOwnerDeletion where the OwnerReferencesPermissionEnforcement admission plugin runs. It
  never changes a spec: kubectl scale and HPAs write spec.replicas with their own permissions.
- The objects it owns (StatefulSets, Services, ConfigMaps, PDBs, ServiceMonitors): watched, and
  written with server-side apply (patch; create for a first apply). It deletes none of them:
  garbage collection follows the owner references when a DynamoCluster goes.
- Secrets: created once with generated credentials, then only read; never patched or deleted.
- Pods: watched, and deleted one at a time for rolling updates. PVCs: read, and deleted on
  scale-down when the cluster's policy says so. Events: created (and patched when aggregated).
*/}}
{{- define "dynamokv-operator.managedRules" -}}
- apiGroups: ["dynamokv.io"]
  resources: ["dynamoclusters"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["dynamokv.io"]
  resources: ["dynamoclusters/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["dynamokv.io"]
  resources: ["dynamoclusters/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "delete"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "list", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
