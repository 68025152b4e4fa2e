{{/* Security contexts (the restricted Pod Security Standard) and scheduling of every pod. */}}

{{/*
Pod-level security context of the restricted Pod Security Standard.
Usage: include "odoo-tenant.pod.securityContext" .Values.odoo.podSecurityContext
*/}}
{{- define "odoo-tenant.pod.securityContext" -}}
runAsNonRoot: true
runAsUser: {{ int .runAsUser }}
runAsGroup: {{ int .runAsGroup }}
fsGroup: {{ int .fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
uid/gid of the `odoo` user of the official image of odoo.version: Ubuntu jammy (17.0), where
uid 100 is `_apt`, gives it 101; Ubuntu noble (18.0, 19.0) gives it 100. The group is 101 in both.
*/}}
{{- define "odoo-tenant.pod.odooImageUser" -}}
{{- $uids := dict "17.0" 101 "18.0" 100 "19.0" 100 -}}
{{- toJson (dict "runAsUser" (get $uids (toString .Values.odoo.version) | default 100) "runAsGroup" 101 "fsGroup" 101) -}}
{{- end -}}

{{/*
Pod security context of every pod running the Odoo image (web, cron, backup/restore/verify
Jobs, helm test): odoo.podSecurityContext, its empty fields from the image's odoo user. The
same fsGroup in all of them, so that whichever mounts a volume first gives it that group.
*/}}
{{- define "odoo-tenant.pod.odooSecurityContext" -}}
{{- $image := include "odoo-tenant.pod.odooImageUser" . | fromJson -}}
{{- $set := dict -}}
{{- range $key, $value := .Values.odoo.podSecurityContext -}}
{{- if not (kindIs "invalid" $value) -}}{{- $_ := set $set $key $value -}}{{- end -}}
{{- end -}}
{{- include "odoo-tenant.pod.securityContext" (merge $set $image) -}}
{{- end -}}

{{/*
Container security context of the restricted Pod Security Standard.
Usage: include "odoo-tenant.pod.containerSecurityContext" (dict "readOnlyRootFilesystem" true)
*/}}
{{- define "odoo-tenant.pod.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .readOnlyRootFilesystem }}
runAsNonRoot: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Scheduling shared by every pod: pull secrets, node selector, tolerations. */}}
{{- define "odoo-tenant.pod.scheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
