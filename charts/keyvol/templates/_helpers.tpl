{{/*
Helpers shared by the templates. Names and labels follow the upstream charts on purpose: the
same release of the upstream driver chart (or of the Azure chart) upgraded to this chart keeps
its DaemonSet's name and selector, so Kubernetes rolls the pods over instead of running both.
*/}}

{{/*
keyvol.mode: "node" (the CSI driver with the Azure provider built in) or "provider" (only the
Azure provider, for an upstream driver installed elsewhere). An Azure-chart values file with
`secrets-store-csi-driver.install: false` asks for the latter.
*/}}
{{- define "keyvol.mode" -}}
{{- $nested := index .Values "secrets-store-csi-driver" | default dict -}}
{{- $mode := .Values.mode | default "node" -}}
{{- if and (hasKey $nested "install") (eq (toString $nested.install) "false") -}}
{{- $mode = "provider" -}}
{{- end -}}
{{- if not (has $mode (list "node" "provider")) -}}
{{- fail (printf "mode must be \"node\" or \"provider\", not %q" $mode) -}}
{{- end -}}
{{- $mode -}}
{{- end -}}

{{/*
keyvol.values: the values the templates read, as YAML (callers pipe it through fromYaml). In node
mode the keys nested under `secrets-store-csi-driver:` are laid over the top-level ones, because
in the Azure chart they described the driver pod this chart's pod replaces. The nested image is
never taken: it names upstream's driver, and keyvol's image is linux.image. Empty nested values
(false, "", []) do not override.
*/}}
{{- define "keyvol.values" -}}
{{- $values := deepCopy .Values -}}
{{- if eq (include "keyvol.mode" .) "node" -}}
{{- $nested := deepCopy (index .Values "secrets-store-csi-driver" | default dict) -}}
{{- $_ := unset $nested "install" -}}
{{- if kindIs "map" $nested.linux -}}
{{- $_ := unset $nested.linux "image" -}}
{{- end -}}
{{- $values = mergeOverwrite $values $nested -}}
{{- end -}}
{{- toYaml $values -}}
{{- end -}}

{{/*
keyvol.name: the app name, "secrets-store-csi-driver" as upstream's driver chart (or, in provider
mode, "csi-secrets-store-provider-azure" as the Azure chart's provider), unless nameOverride.
*/}}
{{- define "keyvol.name" -}}
{{- $v := include "keyvol.values" . | fromYaml -}}
{{- $default := "secrets-store-csi-driver" -}}
{{- if eq (include "keyvol.mode" .) "provider" -}}
{{- $default = "csi-secrets-store-provider-azure" -}}
{{- end -}}
{{- default $default $v.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
keyvol.fullname: the DaemonSet's name, computed as upstream's charts compute theirs.
*/}}
{{- define "keyvol.fullname" -}}
{{- $v := include "keyvol.values" . | fromYaml -}}
{{- if $v.fullnameOverride -}}
{{- $v.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "keyvol.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
keyvol.labels: on every object. `app` is also the DaemonSet's selector, as upstream's.
*/}}
{{- define "keyvol.labels" -}}
app: {{ include "keyvol.name" . }}
app.kubernetes.io/name: {{ include "keyvol.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: keyvol
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
keyvol.image: repository:tag (or repository@digest) of keyvol's image. Upstream's images -- the
driver, the Azure provider, the CRD hook image -- are recognised by name, wherever they are
mirrored, and replaced by keyvol's default: a values file written for upstream must not start
upstream's binary with keyvol's command line.
*/}}
{{- define "keyvol.image" -}}
{{- $image := .Values.linux.image | default dict -}}
{{- $repository := $image.repository | default "keyvol" -}}
{{- $tag := $image.tag | default .Chart.AppVersion | toString -}}
{{- $digest := $image.digest | default "" -}}
{{- if regexMatch "(^|/)(csi-)?secrets-store/driver(-crds)?$|(^|/)provider-azure$" $repository -}}
{{- $repository = "keyvol" -}}
{{- $tag = .Chart.AppVersion -}}
{{- $digest = "" -}}
{{- end -}}
{{- if $digest -}}
{{- printf "%s@%s" $repository $digest -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
keyvol.upstreamImage: "true" when linux.image named one of upstream's images (NOTES.txt says so).
*/}}
{{- define "keyvol.upstreamImage" -}}
{{- $repository := (.Values.linux.image | default dict).repository | default "" -}}
{{- if regexMatch "(^|/)(csi-)?secrets-store/driver(-crds)?$|(^|/)provider-azure$" $repository -}}true{{- end -}}
{{- end -}}

{{/*
keyvol.bool: a value as the Go-style boolean keyvol's flags take ("true" or "false"); "false",
"0" and empty values are false, whatever their type.
*/}}
{{- define "keyvol.bool" -}}
{{- if and . (not (has (lower (toString .)) (list "false" "0" "no" "off"))) -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/*
keyvol.healthPort: the /healthz port: livenessProbe.port (the driver chart's), else
linux.healthzPort (the Azure chart's), else 9808.
*/}}
{{- define "keyvol.healthPort" -}}
{{- $v := include "keyvol.values" . | fromYaml -}}
{{- dig "livenessProbe" "port" "" $v | default (dig "linux" "healthzPort" "" $v) | default 9808 | int -}}
{{- end -}}

{{/*
keyvol.dnsPolicy: dnsPolicy (or the Azure chart's linux.dnsPolicy), else the policy that keeps
cluster DNS working for the chosen network.
*/}}
{{- define "keyvol.dnsPolicy" -}}
{{- $v := include "keyvol.values" . | fromYaml -}}
{{- $fallback := ternary "ClusterFirstWithHostNet" "ClusterFirst" (eq (include "keyvol.bool" $v.hostNetwork) "true") -}}
{{- $v.dnsPolicy | default (dig "linux" "dnsPolicy" "" $v) | default $fallback -}}
{{- end -}}

{{/*
keyvol.azureCAArgs / keyvol.azureCAVolume: the CA bundle of azureCABundle, mounted read-only at
/etc/keyvol/azure-ca and passed as --azure-ca-file.
*/}}
{{- define "keyvol.azureCASource" -}}
{{- $ca := .Values.azureCABundle | default dict -}}
{{- if $ca.pem -}}configMap{{- else if $ca.configMap -}}configMap{{- else if $ca.secret -}}secret{{- end -}}
{{- end -}}

{{- define "keyvol.azureCAName" -}}
{{- $ca := .Values.azureCABundle | default dict -}}
{{- if $ca.pem -}}{{ include "keyvol.fullname" . }}-azure-ca{{- else -}}{{ $ca.configMap | default $ca.secret }}{{- end -}}
{{- end -}}
