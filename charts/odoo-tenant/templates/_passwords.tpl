{{/*
Random password kept across upgrades: the value already stored in the Secret if it exists
(lookup; empty with `helm template` and client-side dry runs), else a new random one.
Returns the base64-encoded value, ready for a Secret's `data`.
Usage: include "odoo-tenant.passwords.kept" (dict "context" $ "secret" $name "key" "password")
*/}}
{{- define "odoo-tenant.passwords.kept" -}}
{{- $existing := lookup "v1" "Secret" .context.Release.Namespace .secret -}}
{{- $value := "" -}}
{{- if $existing -}}
{{- $value = index ($existing.data | default dict) .key | default "" -}}
{{- end -}}
{{- if $value -}}
{{- $value -}}
{{- else -}}
{{- randAlphaNum 32 | b64enc -}}
{{- end -}}
{{- end -}}
