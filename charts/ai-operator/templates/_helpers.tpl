{{/*
Names. Every object's name is defined here once; the controller's configuration
(controller-configmap.yaml) uses the same helpers, so what it names is what the chart creates.
*/}}

{{- define "ai-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ai-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "ai-operator.suffixed" -}}
{{- printf "%s-%s" (include "ai-operator.fullname" .root) .suffix | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The controller's ServiceAccount. */}}
{{- define "ai-operator.controllerServiceAccount" -}}
{{- .Values.rbac.serviceAccountName | default (include "ai-operator.fullname" .) }}
{{- end }}

{{/* The ServiceAccount of the compiled pipelines' pods. */}}
{{- define "ai-operator.workflowServiceAccount" -}}
{{- .Values.workflow.serviceAccountName | default (include "ai-operator.suffixed" (dict "root" . "suffix" "workflow")) }}
{{- end }}

{{/* Events: the GitHub EventSource and the ServiceAccount each rule's Sensor runs as. */}}
{{- define "ai-operator.eventSourceName" -}}
{{- .Values.events.eventSourceName | default (include "ai-operator.suffixed" (dict "root" . "suffix" "github")) }}
{{- end }}

{{- define "ai-operator.sensorServiceAccount" -}}
{{- .Values.events.sensorServiceAccountName | default (include "ai-operator.suffixed" (dict "root" . "suffix" "sensor")) }}
{{- end }}

{{/* The controller's Role and RoleBindings. */}}
{{- define "ai-operator.controllerRoleName" -}}
{{- include "ai-operator.suffixed" (dict "root" . "suffix" "controller") }}
{{- end }}

{{/* The controller's configuration file's ConfigMap. */}}
{{- define "ai-operator.controllerConfigMap" -}}
{{- include "ai-operator.suffixed" (dict "root" . "suffix" "controller") }}
{{- end }}

{{/* The settings ConfigMap every pipeline pod loads with envFrom. */}}
{{- define "ai-operator.settingsConfigMap" -}}
{{- .Values.config.configMapName | default (include "ai-operator.suffixed" (dict "root" . "suffix" "config")) }}
{{- end }}

{{/* The Argo semaphore ConfigMap: one key per shared token, its value the limit. */}}
{{- define "ai-operator.semaphoreConfigMap" -}}
{{- include "ai-operator.suffixed" (dict "root" . "suffix" "sync") }}
{{- end }}

{{- define "ai-operator.semaphoreKey" -}}
github-token
{{- end }}

{{/* The default Secret: the one the chart creates, and where tokens are read by default. */}}
{{- define "ai-operator.secretName" -}}
{{- .Values.secret.name | default (include "ai-operator.suffixed" (dict "root" . "suffix" "secrets")) }}
{{- end }}

{{/* ClusterRoles and ClusterRoleBindings are cluster-wide: their names carry the namespace. */}}
{{- define "ai-operator.clusterRoleName" -}}
{{- printf "%s-%s-controller" .Release.Namespace (include "ai-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Where one token is read from, as JSON {"name": ..., "key": ...}. Call with
(dict "root" $ "values" .Values.github "key" "github-token").
*/}}
{{- define "ai-operator.tokenRef" -}}
{{- if .values.tokenSecretName }}
{{- dict "name" .values.tokenSecretName "key" (.values.tokenSecretKey | default .key) | toJson }}
{{- else }}
{{- dict "name" (include "ai-operator.secretName" .root) "key" .key | toJson }}
{{- end }}
{{- end }}

{{/* The image every pod runs. */}}
{{- define "ai-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/* Image pull secrets as a JSON list of names (values may hold names or {name: ...}). */}}
{{- define "ai-operator.pullSecretNames" -}}
{{- $names := list }}
{{- range .Values.image.pullSecrets }}
{{- if kindIs "map" . }}
{{- $names = append $names .name }}
{{- else }}
{{- $names = append $names . }}
{{- end }}
{{- end }}
{{- $names | toJson }}
{{- end }}

{{/*
"true" when the controller serves /metrics on a port of its own (metricsPort); on the health
port it always does.
*/}}
{{- define "ai-operator.metricsPortOwn" -}}
{{- if and .Values.metrics.enabled (ne (int .Values.metrics.port) (int .Values.healthcheck.port)) }}true{{- end }}
{{- end }}

{{/* "true" when the controller serves every namespace. */}}
{{- define "ai-operator.allNamespaces" -}}
{{- if or .Values.watchAllNamespaces (has "*" .Values.watchNamespaces) }}true{{- end }}
{{- end }}

{{/*
The namespaces the controller serves, as JSON: [] means all of them (the controller's
configuration uses the same convention).
*/}}
{{- define "ai-operator.watchedNamespaces" -}}
{{- if include "ai-operator.allNamespaces" . }}
{{- list | toJson }}
{{- else if .Values.watchNamespaces }}
{{- .Values.watchNamespaces | uniq | toJson }}
{{- else }}
{{- list .Release.Namespace | toJson }}
{{- end }}
{{- end }}

{{/*
Namespaces that get the pipelines' objects (ServiceAccount, Role, ConfigMaps, Secret), as JSON:
the watched namespaces, or the release namespace when every namespace is watched.
*/}}
{{- define "ai-operator.pipelineNamespaces" -}}
{{- if include "ai-operator.allNamespaces" . }}
{{- list .Release.Namespace | toJson }}
{{- else }}
{{- include "ai-operator.watchedNamespaces" . }}
{{- end }}
{{- end }}

{{- define "ai-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ai-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ai-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ai-operator.labels" -}}
helm.sh/chart: {{ include "ai-operator.chart" . }}
{{ include "ai-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ai-operator
{{- end }}

{{/*
Refuse values that cannot work, each with the value's path. Included once, by the controller's
ConfigMap.
*/}}
{{- define "ai-operator.checks" -}}
{{- if and (include "ai-operator.allNamespaces" .) (without .Values.watchNamespaces "*") }}
{{- fail "watchNamespaces: every namespace (\"*\" or watchAllNamespaces) cannot be combined with namespace names" }}
{{- end }}
{{- range $name, $values := dict "github" .Values.github "ai" .Values.ai }}
{{- if and $values.token $values.tokenSecretName }}
{{- fail (printf "%s.token and %s.tokenSecretName are both set: choose one" $name $name) }}
{{- end }}
{{- if and $values.token (not $.Values.secret.create) }}
{{- fail (printf "%s.token is set but secret.create is false: set secret.create=true to store it in a Secret, or remove %s.token and create the Secret yourself" $name $name) }}
{{- end }}
{{- if and $.Values.secret.create (not $values.tokenSecretName) (not $values.token) (not (and (eq $name "github") $.Values.github.app.id)) }}
{{- fail (printf "secret.create is true: %s.token is required (or read it from an existing Secret with %s.tokenSecretName)" $name $name) }}
{{- end }}
{{- end }}
{{- if and .Values.argocd.token .Values.argocd.tokenSecretName }}
{{- fail "argocd.token and argocd.tokenSecretName are both set: choose one" }}
{{- end }}
{{- if and .Values.argocd.token (not .Values.secret.create) }}
{{- fail "argocd.token is set but secret.create is false: set secret.create=true to store it in a Secret, or remove argocd.token and create the Secret yourself" }}
{{- end }}
{{- if and .Values.argocd.enabled (not .Values.argocd.url) }}
{{- fail "argocd.enabled is true: argocd.url is required (Argo CD's base URL)" }}
{{- end }}
{{- if and .Values.github.app.id (or .Values.github.token .Values.github.tokenSecretName) }}
{{- fail "github.app.id and a GitHub token (github.token or github.tokenSecretName) are both set: choose one" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.controller.leaderElection.enabled) }}
{{- fail "replicaCount: more than one replica needs controller.leaderElection.enabled" }}
{{- end }}
{{- if and (not .Values.rbac.create) (not .Values.rbac.serviceAccountName) }}
{{- fail "rbac.create is false: rbac.serviceAccountName must name an existing ServiceAccount" }}
{{- end }}
{{- if .Values.events.enabled }}
{{- if ne .Values.executor "argo" }}
{{- fail "events.enabled needs executor: argo (the CronJob target is schedule-only: docs/pipelines.md)" }}
{{- end }}
{{- if not .Values.events.github.organizations }}
{{- fail "events.enabled: events.github.organizations must name the organization(s) whose webhook delivers here" }}
{{- end }}
{{- if not .Values.events.webhook.url }}
{{- fail "events.enabled: events.webhook.url must be the public URL GitHub delivers to" }}
{{- end }}
{{- if and .Values.events.ingress.enabled (not .Values.events.ingress.host) }}
{{- fail "events.ingress.enabled: events.ingress.host is required" }}
{{- end }}
{{- end }}
{{- if and (not .Values.rbac.create) (not .Values.workflow.serviceAccountName) }}
{{- fail "rbac.create is false: workflow.serviceAccountName must name an existing ServiceAccount" }}
{{- end }}
{{- end }}

{{/* The Lease the controller's replicas elect their leader with (in the release namespace). */}}
{{- define "ai-operator.leaseName" -}}
{{- include "ai-operator.suffixed" (dict "root" . "suffix" "controller") }}
{{- end }}

{{/* The ClusterRole reading the cluster's PRReconciliationLimits. */}}
{{- define "ai-operator.limitsRoleName" -}}
{{- printf "%s-%s-limits" .Release.Namespace (include "ai-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The spec of a PRReconciliationLimits from a values entry: (dict "spec" <entry> "repositories"
<the repositories to write>).
*/}}
{{- define "ai-operator.limitsSpec" -}}
{{- $spec := .spec }}
repositories: {{ .repositories | toJson }}
allowedActions: {{ $spec.allowedActions | default (list "merge" "close" "escalate" "wait") | toJson }}
ai:
  endpoints: {{ (($spec.ai | default dict).endpoints | default list) | toJson }}
  providers: {{ (($spec.ai | default dict).providers | default list) | toJson }}
  allowInsecureHttp: {{ (($spec.ai | default dict).allowInsecureHttp | default false) }}
{{- with $spec.secretName }}
secretName: {{ . | toJson }}
{{- end }}
{{- end }}

{{/*
Namespaces that get a copy of the chart's tokens (secret.create), as JSON: the release namespace
(the default when it is served), and each namespace whose limits entry sets copyTokens. No other
namespace gets the installation's tokens: give it a Secret of its own (limits.<ns>.secretName).
*/}}
{{- define "ai-operator.tokenNamespaces" -}}
{{- $found := list .Release.Namespace }}
{{- range $namespace, $spec := .Values.limits.namespaces }}
{{- if $spec.copyTokens }}
{{- $found = append $found $namespace }}
{{- end }}
{{- end }}
{{- $found | uniq | toJson }}
{{- end }}

{{/* A whole number given as a number or a string ("" when empty), never in exponent form. */}}
{{- define "ai-operator.wholeNumber" -}}
{{- if . }}{{ . | int64 | toString }}{{ end }}
{{- end }}
