{{/* Names, labels and the checks of values that the schema cannot express. */}}

{{- define "sluice.name" -}}sluice{{- end -}}

{{/* The release's objects are named after the release, as deploy/ names them "sluice". */}}
{{- define "sluice.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: the ServiceAccount to run as, when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "sluice.selector" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "sluice.selector" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The port of --listen (":8888", "0.0.0.0:8888", "[::]:8888"), or "" for "off". */}}
{{- define "sluice.listenPort" -}}
{{- if ne .Values.listen "off" -}}
{{- regexReplaceAll "^.*:" .Values.listen "" -}}
{{- end -}}
{{- end -}}

{{/* Fails the render on values that contradict each other; renders nothing. */}}
{{- define "sluice.validate" -}}
{{- $git := .Values.source.git -}}
{{- if and $git.url .Values.source.dir -}}
{{- fail "source.git.url and source.dir: give one source, not both" -}}
{{- end -}}
{{- if and $git.writeBack (not $git.url) -}}
{{- fail "source.git.writeBack needs source.git.url" -}}
{{- end -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicas above 1 need leaderElection.enabled: replicas without a leader would all sync and reconcile" -}}
{{- end -}}
{{- if and $git.credentials.method (not $git.credentials.existingSecret) -}}
{{- fail (printf "source.git.credentials.existingSecret: the Secret holding the %s credentials" $git.credentials.method) -}}
{{- end -}}
{{- if and $git.ca.existingSecret $git.ca.existingConfigMap -}}
{{- fail "source.git.ca: existingSecret or existingConfigMap, not both" -}}
{{- end -}}
{{- if and .Values.controller.shard (not .Values.controller.enabled) -}}
{{- fail "controller.shard needs controller.enabled: a shard is a part of the streams to control" -}}
{{- end -}}
{{- if and .Values.kubeconfig.context (not .Values.kubeconfig.existingSecret) -}}
{{- fail "kubeconfig.context needs kubeconfig.existingSecret" -}}
{{- end -}}
{{- end -}}

{{/* One env entry of a string flag, when the value is set (empty: sluice's default). */}}
{{- define "sluice.envString" -}}
{{- if not (kindIs "invalid" (index . 1)) }}{{ if ne (toString (index . 1)) "" }}
- name: {{ index . 0 }}
  value: {{ toString (index . 1) | quote }}
{{- end }}{{ end }}
{{- end -}}

{{/* One env entry of a boolean flag, always rendered: the Deployment says what is off too. */}}
{{- define "sluice.envBool" -}}
- name: {{ index . 0 }}
  value: {{ ternary "true" "false" (index . 1) | quote }}
{{- end -}}

{{/* The environment of `sluice run`: every flag as its SLUICE_* variable. */}}
{{- define "sluice.env" -}}
{{- $v := .Values -}}
{{- $git := $v.source.git -}}
{{- $cred := $git.credentials -}}
{{- include "sluice.envString" (list "SLUICE_GIT_URL" $git.url) }}
{{- if $git.url }}
{{- include "sluice.envString" (list "SLUICE_GIT_REF" $git.ref) }}
{{- include "sluice.envString" (list "SLUICE_GIT_PATH" $git.path) }}
{{- if eq $cred.method "basic" }}
{{- if $cred.username }}
{{- include "sluice.envString" (list "SLUICE_GIT_USERNAME" $cred.username) }}
{{- else }}
- name: SLUICE_GIT_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $cred.existingSecret }}
      key: {{ $cred.usernameKey }}
{{- end }}
- name: SLUICE_GIT_PASSWORD_FILE
  value: /etc/sluice/git/password
{{- else if eq $cred.method "ssh" }}
- name: SLUICE_GIT_SSH_KEY
  value: /etc/sluice/git/ssh-key
- name: SLUICE_GIT_KNOWN_HOSTS
  value: /etc/sluice/git/known_hosts
{{- end }}
{{- if or $git.ca.existingSecret $git.ca.existingConfigMap }}
- name: SLUICE_GIT_CA_FILE
  value: /etc/sluice/git-ca/ca.crt
{{- end }}
{{- include "sluice.envBool" (list "SLUICE_GIT_ALLOW_HTTP" $git.allowHttp) | nindent 0 }}
{{- include "sluice.envString" (list "SLUICE_GIT_AUTHOR" $git.author) }}
{{- include "sluice.envString" (list "SLUICE_GIT_TIMEOUT" $git.timeout) }}
{{- include "sluice.envBool" (list "SLUICE_WRITE_BACK" $git.writeBack) | nindent 0 }}
{{- end }}
{{- include "sluice.envString" (list "SLUICE_DIR" $v.source.dir) }}
{{- include "sluice.envString" (list "SLUICE_INTERVAL" $v.source.interval) }}
{{- include "sluice.envString" (list "SLUICE_SOURCE_ID" $v.source.sourceId) }}
{{- include "sluice.envString" (list "SLUICE_CACHE_DIR" $v.cacheDir) }}
{{- include "sluice.envString" (list "SLUICE_INVENTORY_NAMESPACE" $v.source.inventoryNamespace) }}
{{- include "sluice.envBool" (list "SLUICE_PRUNE" $v.source.prune) | nindent 0 }}
{{- include "sluice.envBool" (list "SLUICE_ALLOW_EMPTY_PRUNE" $v.source.allowEmptyPrune) | nindent 0 }}
{{- include "sluice.envBool" (list "SLUICE_NO_SYNC" (not $v.sync.enabled)) | nindent 0 }}
{{- include "sluice.envBool" (list "SLUICE_NO_CONTROLLER" (not $v.controller.enabled)) | nindent 0 }}
{{- include "sluice.envString" (list "SLUICE_WATCH_NAMESPACE" (join "," $v.watchNamespaces)) }}
{{- if $v.controller.enabled }}
{{- include "sluice.envString" (list "SLUICE_SHARD" $v.controller.shard) }}
{{- end }}
{{- if $v.controller.workers }}
{{- include "sluice.envString" (list "SLUICE_WORKERS" $v.controller.workers) }}
{{- end }}
{{- include "sluice.envBool" (list "SLUICE_LEADER_ELECT" $v.leaderElection.enabled) | nindent 0 }}
{{- if $v.leaderElection.enabled }}
{{- include "sluice.envString" (list "SLUICE_LEADER_ELECT_NAMESPACE" $v.leaderElection.namespace) }}
{{- include "sluice.envString" (list "SLUICE_LEADER_ELECT_NAME" $v.leaderElection.name) }}
{{- include "sluice.envString" (list "SLUICE_LEADER_ELECT_LEASE_DURATION" $v.leaderElection.leaseDuration) }}
{{- include "sluice.envString" (list "SLUICE_LEADER_ELECT_RENEW_DEADLINE" $v.leaderElection.renewDeadline) }}
{{- include "sluice.envString" (list "SLUICE_LEADER_ELECT_RETRY_PERIOD" $v.leaderElection.retryPeriod) }}
{{- end }}
{{- include "sluice.envString" (list "SLUICE_LISTEN" $v.listen) }}
{{- if $v.webhook.existingSecret }}
- name: SLUICE_WEBHOOK_SECRET_FILE
  value: /etc/sluice/webhook/secret
{{- end }}
{{- if $v.kubeconfig.existingSecret }}
- name: SLUICE_KUBECONFIG
  value: /etc/sluice/kubeconfig/kubeconfig
{{- include "sluice.envString" (list "SLUICE_CONTEXT" $v.kubeconfig.context) }}
{{- end }}
{{- include "sluice.envString" (list "SLUICE_SHUTDOWN_TIMEOUT" $v.shutdownTimeout) }}
{{- include "sluice.envString" (list "SLUICE_LOG_FORMAT" $v.logFormat) }}
{{- include "sluice.envString" (list "SLUICE_LOG_LEVEL" $v.logLevel) }}
{{- end -}}
