{{- /* What to do after installing: NOTES.txt prints it (and the chart tests render it). */}}
{{- define "ai-operator.notes" -}}
{{- $ns := .Release.Namespace }}
{{- $secret := include "ai-operator.secretName" . }}
{{- $namespaces := include "ai-operator.pipelineNamespaces" . | fromJsonArray }}
{{- $argo := eq .Values.executor "argo" }}
{{- $ruleNs := first $namespaces }}
{{- $keys := list }}
{{- if .Values.github.app.id }}{{ if not .Values.github.app.privateKeySecretName }}{{ $keys = append $keys "--from-file=github-app-private-key=<the App's private key file (.pem)>" }}{{ end }}
{{- else if not .Values.github.tokenSecretName }}{{ $keys = append $keys "--from-literal=github-token=<GitHub token>" }}{{ end }}
{{- if not .Values.ai.tokenSecretName }}{{ $keys = append $keys "--from-literal=ai-token=<model API key>" }}{{ end }}
ai-operator {{ .Chart.AppVersion }} is installed in namespace {{ $ns }} (executor: {{ .Values.executor }}).
{{- if include "ai-operator.allNamespaces" . }}
{{- $copies := list (printf "ServiceAccount %s" (include "ai-operator.workflowServiceAccount" .)) }}
{{- if $argo }}{{ $copies = append $copies (printf "its Role, ConfigMap %s" (include "ai-operator.semaphoreConfigMap" .)) }}{{ end }}
{{- if .Values.config.useConfigMap }}{{ $copies = append $copies (printf "ConfigMap %s" (include "ai-operator.settingsConfigMap" .)) }}{{ end }}
{{- $copies = append $copies (printf "Secret %s" $secret) }}
It serves rules in every namespace. A rule outside {{ $ns }} also needs, in its own namespace,
copies of: {{ $copies | join ", " }} (see docs/cluster.md).
{{- else }}
It serves rules in: {{ $namespaces | join ", " }}.
{{- end }}

Next steps:
{{- $n := 1 }}
{{- if and (not .Values.secret.create) $keys }}

{{ $n }}. Create the Secret with the tokens:
{{- $n = add1 $n }}
{{- range $namespaces }}

     kubectl -n {{ . }} create secret generic {{ $secret }}
{{- range $keys }} \
       {{ . }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.github.tokenSecretName }}

   The GitHub token is read from the Secret {{ . }}, key {{ $.Values.github.tokenSecretKey | default "github-token" }}.
{{- end }}
{{- with .Values.ai.tokenSecretName }}

   The model API key is read from the Secret {{ . }}, key {{ $.Values.ai.tokenSecretKey | default "ai-token" }}.
{{- end }}
{{- if $argo }}

{{ $n }}. Argo Workflows v4.x (its CRDs and workflow controller) must run in the cluster.
{{- $n = add1 $n }}
{{- end }}

{{ $n }}. Apply a rule, then watch it:
{{- $n = add1 $n }}

     kubectl -n {{ $ruleNs }} apply -f my-rule.yaml
     kubectl -n {{ $ruleNs }} get prrules
{{- if $argo }}
     argo -n {{ $ruleNs }} list -l aioperator.io/rule=<rule name>

   In the Argo UI, filter workflows by the label aioperator.io/rule=<rule name>. Finished pods
   are kept {{ .Values.workflow.podGCDeleteDelay }}, so `argo logs` works for that long.
{{- else }}
     kubectl -n {{ $ruleNs }} get cronjobs,jobs -l aioperator.io/rule=<rule name>
{{- end }}
{{- if .Values.rules.enabled }}

   The example rules are installed in {{ $ruleNs }}.
{{- if not .Values.github.repositories }} They cover github.organization's
   github.repositories, which are empty: set them, or the rules find no pull requests.
{{- end }}
{{- end }}

{{ $n }}. The controller's logs:

     kubectl -n {{ $ns }} logs deployment/{{ include "ai-operator.fullname" . }}
{{- if and .Values.argocd.enabled (not .Values.argocd.token) (not .Values.argocd.tokenSecretName) }}

Argo CD is enabled: rules with argocdEnabled read their application's health from {{ .Values.argocd.url }}
with the token in key argocd-token of {{ $secret }} (without it, Argo CD is asked anonymously).
{{- end }}
{{- if .Values.observability.tracing.enabled }}

Note: observability.tracing is accepted for compatibility but unused: this version does not trace.
{{- end }}
{{- end }}
