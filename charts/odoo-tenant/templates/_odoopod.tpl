{{/*
Pod template of the Odoo Deployments.
Usage: include "odoo-tenant.odoopod.template" (dict "context" $ "component" "odoo"|"cron")

- component "odoo": serves HTTP (8069, and 8072 for /websocket with workers > 0); its odoo-init
  container initializes a new database. Runs the cron jobs too unless odoo.cron.dedicated.
- component "cron": HTTP disabled, runs the cron jobs only; its odoo-init container waits
  until the database is initialized. With a ReadWriteOnce filestore it must run on the node
  of the web pod (required pod affinity).
*/}}
{{- define "odoo-tenant.odoopod.template" -}}
{{- $ctx := .context -}}
{{- $v := $ctx.Values.odoo -}}
{{- $web := eq .component "odoo" -}}
{{- $confKey := ternary "odoo.conf" "odoo-cron.conf" $web -}}
{{- $series := $v.version | trimSuffix ".0" | int -}}
metadata:
  labels:
    {{- include "odoo-tenant.labels.standard" (dict "context" $ctx "pod" true "component" .component) | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # Its own odoo.conf, not the whole ConfigMap (whose labels name the chart's version).
    checksum/config: {{ include "odoo-tenant.odooconf.file" (dict "context" $ctx "component" .component) | sha256sum }}
    checksum/scripts: {{ $ctx.Files.Get "files/odoo-init.py" | sha256sum }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "odoo-tenant.names.serviceAccount" $ctx }}
  automountServiceAccountToken: false
  # No docker-link style variables: the official entrypoint would read DB_PORT_5432_TCP_ADDR.
  enableServiceLinks: false
  {{- if $web }}
  # report.url names the Odoo Service (odoo-init pins it at every start; _odoo.tpl says which
  # port): in the web pods that name is the pod itself, so wkhtmltopdf fetches a report's assets
  # over loopback, never through the Service back to its own pod (hairpin traffic, which some
  # CNIs drop under the NetworkPolicies: kubernetes/kubernetes#125611). The dedicated cron pod
  # serves no HTTP: there the name is the Service, i.e. the web pods.
  hostAliases:
    - ip: 127.0.0.1
      hostnames:
        - {{ include "odoo-tenant.names.odoo" $ctx }}
  {{- end }}
  {{- with $ctx.Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ int $v.terminationGracePeriodSeconds }}
  securityContext:
    {{- include "odoo-tenant.pod.odooSecurityContext" $ctx | nindent 4 }}
  {{- with include "odoo-tenant.pod.scheduling" $ctx }}{{- . | nindent 2 }}{{- end }}
  affinity:
    {{- if $web }}
    # Spread the tenant's web pods over nodes (scheduling preference, never a blocker).
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector:
              matchLabels:
                saasodoo.dev/tenant: {{ include "odoo-tenant.names.tenantId" $ctx | quote }}
                {{- include "odoo-tenant.labels.selector" (dict "context" $ctx "component" "odoo") | nindent 16 }}
    {{- else if include "odoo-tenant.odoo.filestoreRwo" $ctx }}
    # The ReadWriteOnce filestore is attached to the web pod's node: run there.
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "odoo-tenant.labels.selector" (dict "context" $ctx "component" "odoo") | nindent 14 }}
    {{- else }}
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 50
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector:
              matchLabels:
                {{- include "odoo-tenant.labels.selector" (dict "context" $ctx "component" "odoo") | nindent 16 }}
    {{- end }}
  initContainers:
    - name: odoo-init
      image: {{ include "odoo-tenant.images.odoo" $ctx }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command:
        - python3
        - /opt/odoo-tenant/odoo-init.py
        - --template=/etc/odoo-tenant/{{ $confKey }}
        - --config=/run/odoo/odoo.conf
        - --timeout={{ int $v.dbInit.waitTimeoutSeconds }}
        {{- if $web }}
        - --initialize
        {{- if and (lt $series 19) (not $v.demoData) }}
        - --init-flag=--without-demo=all
        {{- else if and (ge $series 19) $v.demoData }}
        - --init-flag=--with-demo
        {{- end }}
        {{- with $v.language }}
        - --init-flag=--load-language={{ . }}
        {{- end }}
        {{- with $v.dbInit.template.key }}
        # A new tenant made from a template: its restore is awaited instead of `-i base`.
        - --from-template={{ . }}
        - --template-wait={{ int $v.dbInit.template.waitSeconds }}
        {{- end }}
        {{- else }}
        - --wait
        {{- end }}
        {{- if $ctx.Values.tenant.copyOf }}
        # A staging copy: web pods neutralize its database before Odoo starts on it (unless it
        # was as this copy); the cron pod waits for that (files/odoo-init.py --copy).
        - --copy
        {{- end }}
      env:
        {{- include "odoo-tenant.database.env" $ctx | nindent 8 }}
        - name: ODOO_MASTER_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ include "odoo-tenant.odoo.masterSecretName" $ctx }}
              key: {{ include "odoo-tenant.odoo.masterSecretKey" $ctx }}
        {{- if and $v.smtp.enabled $v.smtp.user }}
        - name: ODOO_SMTP_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ required "odoo.smtp.existingSecret is required when odoo.smtp.user is set" $v.smtp.existingSecret }}
              key: {{ $v.smtp.existingSecretKey }}
        {{- end }}
        {{- if $web }}
        - name: ODOO_ADMIN_EMAIL
          value: {{ $v.admin.email | quote }}
        - name: ODOO_ADMIN_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ include "odoo-tenant.odoo.adminSecretName" $ctx }}
              key: {{ include "odoo-tenant.odoo.adminSecretKey" $ctx }}
        - name: ODOO_LANGUAGE
          value: {{ $v.language | quote }}
        {{- /* The create request's personalization: rendered only when set, so the pods of a
        tenant created without it do not change. */}}
        {{- with $v.admin.login }}
        - name: ODOO_ADMIN_LOGIN
          value: {{ . | quote }}
        {{- end }}
        {{- with $v.company.name }}
        - name: ODOO_COMPANY_NAME
          value: {{ . | quote }}
        {{- end }}
        {{- with $v.company.country }}
        - name: ODOO_COUNTRY
          value: {{ . | quote }}
        {{- end }}
        {{- with $v.timezone }}
        - name: ODOO_TIMEZONE
          value: {{ . | quote }}
        {{- end }}
        - name: ODOO_BASE_URL
          value: {{ ternary (include "odoo-tenant.odoo.url" $ctx) "" $ctx.Values.ingress.enabled | quote }}
        - name: ODOO_REPORT_URL
          value: {{ include "odoo-tenant.odoo.reportUrl" $ctx | quote }}
        {{- end }}
      securityContext:
        {{- include "odoo-tenant.pod.containerSecurityContext" (dict "readOnlyRootFilesystem" $v.readOnlyRootFilesystem) | nindent 8 }}
      resources:
        {{- toYaml $v.dbInit.resources | nindent 8 }}
      volumeMounts:
        - name: config-template
          mountPath: /etc/odoo-tenant
          readOnly: true
        - name: scripts
          mountPath: /opt/odoo-tenant
          readOnly: true
        - name: config
          mountPath: /run/odoo
        - name: filestore
          mountPath: /var/lib/odoo
        - name: tmp
          mountPath: /tmp
  containers:
    - name: odoo
      image: {{ include "odoo-tenant.images.odoo" $ctx }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      # Odoo itself, without the image's entrypoint (it would pass the database password on the
      # command line); the configuration, secrets included, is the file odoo-init wrote.
      command:
        - odoo
      args:
        - --config=/run/odoo/odoo.conf
      env:
        - name: ODOO_RC
          value: /run/odoo/odoo.conf
      {{- if $web }}
      ports:
        - name: http
          containerPort: 8069
          protocol: TCP
        {{- if include "odoo-tenant.odoo.websocket" $ctx }}
        - name: websocket
          containerPort: 8072
          protocol: TCP
        {{- end }}
      startupProbe:
        httpGet:
          path: /web/health
          port: http
        periodSeconds: {{ int $v.startupProbe.periodSeconds }}
        timeoutSeconds: {{ int $v.startupProbe.timeoutSeconds }}
        failureThreshold: {{ int $v.startupProbe.failureThreshold }}
      readinessProbe:
        httpGet:
          path: /web/health
          port: http
        periodSeconds: {{ int $v.readinessProbe.periodSeconds }}
        timeoutSeconds: {{ int $v.readinessProbe.timeoutSeconds }}
        failureThreshold: {{ int $v.readinessProbe.failureThreshold }}
      # Liveness: the HTTP port accepts connections. The kernel completes them into the
      # listening socket's backlog while every worker is busy with long requests (Odoo itself
      # kills those past limit_time_real), where /web/health needs a free worker and would get
      # a healthy, busy pod restarted. Readiness keeps /web/health: a busy pod leaves the Service.
      livenessProbe:
        tcpSocket:
          port: http
        periodSeconds: {{ int $v.livenessProbe.periodSeconds }}
        timeoutSeconds: {{ int $v.livenessProbe.timeoutSeconds }}
        failureThreshold: {{ int $v.livenessProbe.failureThreshold }}
      {{- end }}
      securityContext:
        {{- include "odoo-tenant.pod.containerSecurityContext" (dict "readOnlyRootFilesystem" $v.readOnlyRootFilesystem) | nindent 8 }}
      resources:
        {{- toYaml (ternary $v.resources $v.cron.resources $web) | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /run/odoo
          readOnly: true
        - name: filestore
          mountPath: /var/lib/odoo
        - name: tmp
          mountPath: /tmp
        {{- if and $web (include "odoo-tenant.backup.claimed" $ctx) }}
        - name: backups
          mountPath: /var/lib/odoo-backups
          readOnly: true
        {{- end }}
  volumes:
    - name: config-template
      configMap:
        name: {{ include "odoo-tenant.names.odooConfig" $ctx }}
    - name: scripts
      configMap:
        name: {{ include "odoo-tenant.names.scripts" $ctx }}
    # The final odoo.conf holds secrets: memory-backed, never written to the node's disk.
    - name: config
      emptyDir:
        medium: Memory
        sizeLimit: 1Mi
    - name: tmp
      emptyDir:
        sizeLimit: 1Gi
    - name: filestore
      persistentVolumeClaim:
        claimName: {{ include "odoo-tenant.names.filestoreClaim" $ctx }}
    {{- if and $web (include "odoo-tenant.backup.claimed" $ctx) }}
    # Mounted here so that the backup PVC binds at install: with a WaitForFirstConsumer
    # StorageClass a PVC binds only once a pod uses it, and `helm --wait` waits for every PVC
    # to be Bound. The backup Job runs on this node anyway. Read-write at the pod level (the
    # container mounts it read-only): the kubelet gives a volume its fsGroup only on a
    # read-write mount, and plugins such as `local` only on the first mount on a node, so
    # whichever pod mounts it first must make it writable for the backup Job's group.
    - name: backups
      persistentVolumeClaim:
        claimName: {{ include "odoo-tenant.names.backup" $ctx }}
    {{- end }}
{{- end -}}
