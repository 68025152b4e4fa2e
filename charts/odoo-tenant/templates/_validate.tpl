{{/*
Checks across values that the schema cannot express, with messages that say what to change.
Included first by the templates whose rendering depends on them.
*/}}
{{- define "odoo-tenant.validate" -}}
{{- $v := .Values -}}
{{- range $where, $map := dict "commonLabels" $v.commonLabels "odoo.podLabels" $v.odoo.podLabels -}}
{{- range $key, $_ := $map -}}
{{- if regexMatch "^(app\\.kubernetes\\.io/|helm\\.sh/|saasodoo\\.dev/tenant$)" $key -}}
{{- fail (printf "%s.%s: the chart sets this label itself; choose another key" $where $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $where, $map := dict "odoo.config.extraOptions" $v.odoo.config.extraOptions "postgresql.parameters" $v.postgresql.parameters -}}
{{- range $key, $value := $map -}}
{{- if not (regexMatch "^[a-z_][a-z0-9_.]*$" $key) -}}
{{- fail (printf "%s: %q is not an option name (lowercase letters, digits, _ and .)" $where $key) -}}
{{- end -}}
{{- if regexMatch "[\r\n]" (toString $value) -}}
{{- fail (printf "%s.%s: the value must be a single line" $where $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $replicas := int $v.odoo.replicas -}}
{{- if and (gt $replicas 1) (include "odoo-tenant.filestore.rwo" .) -}}
{{- fail (printf "odoo.replicas=%d needs a filestore every pod can mount: set odoo.persistence.accessModes to [ReadWriteMany] (with a StorageClass that supports it), or keep odoo.replicas at 1" $replicas) -}}
{{- end -}}
{{- if not $v.postgresql.enabled -}}
{{- if not $v.externalDatabase.host -}}
{{- fail "externalDatabase.host is required when postgresql.enabled is false" -}}
{{- end -}}
{{- if not $v.externalDatabase.existingSecret -}}
{{- fail "externalDatabase.existingSecret is required when postgresql.enabled is false (a Secret with the password of externalDatabase.user)" -}}
{{- end -}}
{{- if and $v.networkPolicy.enabled (not $v.networkPolicy.egress.externalDatabase.enabled) -}}
{{- fail "postgresql.enabled=false: Odoo must reach externalDatabase.host through the NetworkPolicies; set networkPolicy.egress.externalDatabase.enabled=true (and networkPolicy.egress.externalDatabase.to to the server's ipBlock or namespace), or networkPolicy.enabled=false" -}}
{{- end -}}
{{- end -}}
{{- if and $v.odoo.smtp.enabled (not $v.odoo.smtp.host) -}}
{{- fail "odoo.smtp.host is required when odoo.smtp.enabled is true" -}}
{{- end -}}
{{- if and $v.odoo.smtp.enabled $v.odoo.smtp.user (not $v.odoo.smtp.existingSecret) -}}
{{- fail "odoo.smtp.existingSecret is required when odoo.smtp.user is set (a Secret with the SMTP password)" -}}
{{- end -}}
{{- end -}}
