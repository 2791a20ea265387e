{{/*
Named templates shared by every manifest. Each takes the root context (`.` at the top of a
template, `$` inside a range). The chart is also rendered by tests/helm/render.py, which supports
only the template syntax used in this chart: keep to it (see deploy/helm/README.md).
*/}}

{{/* Prefix of every object name: the release name unless fullnameOverride is set. Kept short so
that "<prefix>-api-gateway" stays a valid DNS label. */}}
{{- define "cogplane.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "cogplane.labels" -}}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cogplane
{{- end -}}

{{/* Selector labels; a service adds app.kubernetes.io/component: <service>. */}}
{{- define "cogplane.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cogplane.configMapName" -}}
{{ include "cogplane.fullname" . }}-config
{{- end -}}

{{- define "cogplane.runnerServiceAccountName" -}}
{{ include "cogplane.fullname" . }}-runner
{{- end -}}

{{/* Secret holding COGPLANE_DATABASE_URL: an existing one, or the chart's own (secret.yaml). */}}
{{- define "cogplane.databaseSecretName" -}}
{{- if .Values.postgresql.existingSecret.name -}}
{{ .Values.postgresql.existingSecret.name }}
{{- else -}}
{{ include "cogplane.fullname" . }}-database
{{- end -}}
{{- end -}}

{{- define "cogplane.databaseSecretKey" -}}
{{ required "postgresql.existingSecret.key is required" .Values.postgresql.existingSecret.key }}
{{- end -}}

{{/* The URL written into the chart's own Secret (unused with an existing Secret). The bitnami
chart names its Service <release>-postgresql. */}}
{{- define "cogplane.databaseUrl" -}}
{{- if .Values.postgresql.enabled -}}
postgresql+asyncpg://{{ required "postgresql.auth.username is required" .Values.postgresql.auth.username }}:{{ required "postgresql.auth.password is required when postgresql.enabled is true" .Values.postgresql.auth.password }}@{{ .Release.Name }}-postgresql:5432/{{ required "postgresql.auth.database is required" .Values.postgresql.auth.database }}
{{- else -}}
{{ required "set postgresql.url (postgresql+asyncpg://...), postgresql.existingSecret.name, or postgresql.enabled" .Values.postgresql.url }}
{{- end -}}
{{- end -}}

{{/* The nats chart names its client Service <release>-nats. */}}
{{- define "cogplane.natsUrl" -}}
{{- if .Values.nats.enabled -}}
nats://{{ .Release.Name }}-nats:4222
{{- else -}}
{{ required "nats.url is required when nats.enabled is false" .Values.nats.url }}
{{- end -}}
{{- end -}}

{{- define "cogplane.gatewayPublicUrl" -}}
{{- if .Values.gateway.publicUrl -}}
{{ .Values.gateway.publicUrl }}
{{- else if .Values.ingress.enabled -}}
{{ if .Values.ingress.tls }}https{{ else }}http{{ end }}://{{ required "ingress.host is required when ingress.enabled is true" .Values.ingress.host }}
{{- else -}}
http://{{ include "cogplane.fullname" . }}-api-gateway.{{ .Release.Namespace }}.svc:{{ index .Values.services "api-gateway" "port" }}
{{- end -}}
{{- end -}}

{{/* Secret holding COGPLANE_GATEWAY_FILES_SIGNING_KEY: an existing one, or the chart's own
(secret.yaml) when a value is given. Neither: fail rather than let the gateway fall back to its
public development key. */}}
{{- define "cogplane.filesSigningKeySecretName" -}}
{{- if .Values.gateway.filesSigningKey.existingSecret.name -}}
{{ .Values.gateway.filesSigningKey.existingSecret.name }}
{{- else if .Values.gateway.filesSigningKey.value -}}
{{ include "cogplane.fullname" . }}-gateway
{{- else -}}
{{ fail "gateway.filesSigningKey is required: set gateway.filesSigningKey.existingSecret.name (a Secret holding the key under gateway.filesSigningKey.existingSecret.key) or gateway.filesSigningKey.value; without it the gateway would sign file download links with its public development key, which lets anyone forge them" }}
{{- end -}}
{{- end -}}

{{- define "cogplane.filesSigningKeySecretKey" -}}
{{ required "gateway.filesSigningKey.existingSecret.key is required" .Values.gateway.filesSigningKey.existingSecret.key }}
{{- end -}}
