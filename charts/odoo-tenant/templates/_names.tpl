{{/*
Names of the release and of its objects. Every helper of the chart is named
"odoo-tenant.<file>.<what>", <file> being its `_<file>.tpl` (bitnami-style): the chart name
because template names are global across a chart and its subcharts, so a chart others embed must
not clash; the file so that a name says where the helper is defined.
*/}}

{{/* Chart name, or nameOverride. */}}
{{- define "odoo-tenant.names.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of every object name: fullnameOverride, else the release name if it contains the chart
name, else "<release>-<chart>". Truncated to 63 characters (DNS label).
*/}}
{{- define "odoo-tenant.names.fullname" -}}
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

{{/*
Name of a component object: "<fullname>-<suffix>", the full name being cut first so that the
suffix always survives and two components never collide.
Usage: include "odoo-tenant.names.component" (dict "context" $ "suffix" "postgresql" "max" 52)
"max" (default 63) is lower for controllers whose generated names carry a suffix: a
StatefulSet's controller-revision-hash label and a CronJob's Job names must stay within 63.
*/}}
{{- define "odoo-tenant.names.component" -}}
{{- $max := int (default 63 .max) -}}
{{- $prefix := include "odoo-tenant.names.fullname" .context | trunc (int (sub $max (add 1 (len .suffix)))) | trimSuffix "-" -}}
{{- printf "%s-%s" $prefix .suffix -}}
{{- end -}}

{{/* Chart label value: "<name>-<version>". */}}
{{- define "odoo-tenant.names.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Tenant id: tenant.id or the release name. */}}
{{- define "odoo-tenant.names.tenantId" -}}
{{- default .Release.Name .Values.tenant.id | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Names of the objects (a component suffix each). */}}

{{- define "odoo-tenant.names.odoo" -}}
{{- include "odoo-tenant.names.fullname" . -}}
{{- end -}}

{{- define "odoo-tenant.names.cron" -}}
{{- include "odoo-tenant.names.component" (dict "context" . "suffix" "cron") -}}
{{- end -}}

{{- define "odoo-tenant.names.odooSecret" -}}
{{- include "odoo-tenant.names.component" (dict "context" . "suffix" "odoo") -}}
{{- end -}}

{{- define "odoo-tenant.names.odooConfig" -}}
{{- include "odoo-tenant.names.component" (dict "context" . "suffix" "config") -}}
{{- end -}}

{{- define "odoo-tenant.names.odooSeries" -}}
{{- include "odoo-tenant.names.component" (dict "context" . "suffix" "odoo-series") -}}
{{- end -}}

{{- define "odoo-tenant.names.scripts" -}}
{{- include "odoo-tenant.names.component" (dict "context" . "suffix" "scripts") -}}
{{- end -}}

{{- define "odoo-tenant.names.filestoreClaim" -}}
{{- default (include "odoo-tenant.names.component" (dict "context" . "suffix" "filestore")) .Values.odoo.persistence.existingClaim -}}
{{- end -}}

{{- define "odoo-tenant.names.postgresql" -}}
{{- include "odoo-tenant.names.component" (dict "context" . "suffix" "postgresql" "max" 52) -}}
{{- end -}}

{{/*
The ClusterIP Service clients connect to ("-rw", CloudNativePG's name for the read-write
endpoint). The headless Service keeps the StatefulSet's name (its serviceName is immutable).
*/}}
{{- define "odoo-tenant.names.postgresqlClients" -}}
{{- printf "%s-rw" (include "odoo-tenant.names.postgresql" .) -}}
{{- end -}}

{{- define "odoo-tenant.names.postgresqlDataClaim" -}}
{{- printf "%s-data" (include "odoo-tenant.names.postgresql" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "odoo-tenant.names.postgresqlSecret" -}}
{{- default (include "odoo-tenant.names.component" (dict "context" . "suffix" "postgresql")) .Values.postgresql.auth.existingSecret -}}
{{- end -}}

{{- define "odoo-tenant.names.backup" -}}
{{- include "odoo-tenant.names.component" (dict "context" . "suffix" "backup" "max" 52) -}}
{{- end -}}

{{- define "odoo-tenant.names.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "odoo-tenant.names.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
