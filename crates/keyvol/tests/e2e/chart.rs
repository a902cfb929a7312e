//! The Helm chart (`charts/keyvol`) without a cluster: `helm lint` and `helm template` for the
//! default values and for a values file written for each upstream chart (`charts/keyvol/ci/`),
//! then checks on what comes out — every object parses as its Kubernetes type with no field
//! the type lacks, the DaemonSet's command line starts the real binary, the CSIDriver and RBAC
//! are what keyvol needs, upstream's keys map to keyvol's flags, the CRDs are `keyvol crd`'s and
//! `deploy/kubernetes/keyvol.yaml` is the chart rendered.
//!
//! Needs helm: `KEYVOL_HELM` names the binary (`eval "$(./scripts/tools)"` fetches one;
//! scripts/test always sets it). Without it these tests fail, saying so, rather than skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::api::storage::v1::CSIDriver;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use crate::util::*;

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chart() -> PathBuf {
    repo().join("charts/keyvol")
}

/// A values file of `charts/keyvol/ci/`.
fn ci_values(name: &str) -> PathBuf {
    chart().join("ci").join(name)
}

/// The upstream-style values files, each installing keyvol unchanged.
const DRIVER_CHART: &str = "driver-chart-values.yaml";
const AZURE_CHART: &str = "azure-chart-values.yaml";
const AZURE_PROVIDER_ONLY: &str = "azure-provider-only-values.yaml";

/// The Kubernetes version the typed checks render for: the API version k8s-openapi is built
/// with in this crate's dev-dependencies.
const KUBE_VERSION: &str = "1.33.0";

fn helm() -> Command {
    let path = std::env::var_os("KEYVOL_HELM").unwrap_or_else(|| {
        panic!(
            "KEYVOL_HELM is not set: the chart tests need helm v4. Run `eval \"$(./scripts/tools)\"` \
             from the repository root (it fetches helm into .tools/ and sets KEYVOL_HELM), or set \
             KEYVOL_HELM to a helm binary; ./scripts/test does this itself."
        )
    });
    let mut cmd = Command::new(path);
    cmd.current_dir(repo()).stdin(Stdio::null());
    // No user configuration, caches or plugins from the machine.
    let home = std::env::temp_dir().join("keyvol-helm-home");
    for var in ["HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME"] {
        cmd.env(var, &home);
    }
    cmd
}

/// A rendering: release `rel` in kube-system.
struct Render {
    values: Vec<PathBuf>,
    set: Vec<String>,
    kube_version: &'static str,
}

impl Render {
    fn new() -> Self {
        Self {
            values: Vec::new(),
            set: Vec::new(),
            kube_version: KUBE_VERSION,
        }
    }

    fn values(mut self, name: &str) -> Self {
        self.values.push(ci_values(name));
        self
    }

    fn set(mut self, kv: &str) -> Self {
        self.set.push(kv.to_owned());
        self
    }

    fn kube(mut self, version: &'static str) -> Self {
        self.kube_version = version;
        self
    }

    fn text(&self) -> String {
        let mut cmd = helm();
        cmd.args(["template", "rel"]).arg(chart()).args([
            "--namespace",
            "kube-system",
            "--kube-version",
            self.kube_version,
        ]);
        for v in &self.values {
            cmd.arg("-f").arg(v);
        }
        for s in &self.set {
            cmd.args(["--set", s]);
        }
        let out = cmd.output().expect("helm runs");
        assert!(out.status.success(), "helm template: {}", stderr(&out));
        stdout(&out)
    }

    /// Every rendered object, as JSON values.
    fn objects(&self) -> Vec<Value> {
        parse_documents(&self.text())
    }
}

fn parse_documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .expect("helm's output is YAML")
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

fn kind_of(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or_default()
}

fn name_of(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| kind_of(o) == kind && name_of(o) == name)
}

fn only<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let mut of_kind = objects.iter().filter(|o| kind_of(o) == kind);
    let first = of_kind.next().unwrap_or_else(|| panic!("no {kind}"));
    assert!(of_kind.next().is_none(), "more than one {kind}");
    first
}

/// The object as the typed struct `T`, failing on any key `T` does not know: k8s-openapi
/// ignores unknown fields when deserializing, so the typed value is serialized again and every
/// key of the input must still be there, with the same value.
fn typed<T: k8s_openapi::serde::de::DeserializeOwned + k8s_openapi::serde::Serialize>(
    o: &Value,
) -> T {
    let parsed: T = serde_json::from_value(o.clone())
        .unwrap_or_else(|e| panic!("{} {} does not parse: {e}", kind_of(o), name_of(o)));
    let back = serde_json::to_value(&parsed).expect("serializes");
    let mut lost = Vec::new();
    lost_fields(o, &back, String::new(), &mut lost);
    assert!(
        lost.is_empty(),
        "{} {}: fields its Kubernetes type does not have, or that changed: {lost:?}",
        kind_of(o),
        name_of(o)
    );
    parsed
}

fn lost_fields(input: &Value, output: &Value, path: String, lost: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => lost_fields(v, w, format!("{path}.{k}"), lost),
                    None if v.is_null() => {}
                    None => lost.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                lost_fields(v, w, format!("{path}[{i}]"), lost);
            }
        }
        (a, b) if a == b => {}
        _ => lost.push(format!("{path} ({input} became {output})")),
    }
}

/// Parses every object as its type; returns the kinds seen.
fn check_types(objects: &[Value]) -> Vec<String> {
    let mut kinds = Vec::new();
    for o in objects {
        match kind_of(o) {
            "ServiceAccount" => drop(typed::<ServiceAccount>(o)),
            "ConfigMap" => drop(typed::<ConfigMap>(o)),
            "ClusterRole" => drop(typed::<ClusterRole>(o)),
            "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(o)),
            "DaemonSet" => drop(typed::<DaemonSet>(o)),
            "CSIDriver" => drop(typed::<CSIDriver>(o)),
            "CustomResourceDefinition" => drop(typed::<CustomResourceDefinition>(o)),
            other => panic!("the chart rendered a {other} the tests do not know"),
        }
        kinds.push(kind_of(o).to_owned());
    }
    kinds
}

fn daemonset(objects: &[Value]) -> DaemonSet {
    typed(only(objects, "DaemonSet"))
}

fn container(ds: &DaemonSet) -> Container {
    let spec = ds.spec.as_ref().expect("spec");
    let pod = spec.template.spec.as_ref().expect("pod spec");
    assert_eq!(pod.containers.len(), 1, "one container per node");
    pod.containers[0].clone()
}

fn args(ds: &DaemonSet) -> Vec<String> {
    container(ds).args.expect("args")
}

/// The value of `--name=value` in `args` (the last one, as keyvol's flag parsing takes it).
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    args.iter()
        .rev()
        .find_map(|a| a.strip_prefix(prefix.as_str()))
}

fn all_values() -> Vec<(&'static str, Render)> {
    vec![
        ("defaults", Render::new()),
        ("driver chart", Render::new().values(DRIVER_CHART)),
        ("azure chart", Render::new().values(AZURE_CHART)),
        (
            "azure chart, provider only",
            Render::new().values(AZURE_PROVIDER_ONLY),
        ),
        (
            "keyvol's own values",
            Render::new()
                .set("azureCABundle.pem=-----BEGIN CERTIFICATE-----")
                .set("tmpfsSize=67108864")
                .set("rotationLoopInterval=5m")
                .set("extraArgs[0]=--cloud-name=AzureUSGovernmentCloud"),
        ),
    ]
}

#[test]
fn helm_lint_passes_for_the_defaults_and_each_upstream_values_file() {
    for values in [
        None,
        Some(DRIVER_CHART),
        Some(AZURE_CHART),
        Some(AZURE_PROVIDER_ONLY),
    ] {
        let mut cmd = helm();
        cmd.args(["lint", "--strict", "--kube-version", KUBE_VERSION])
            .arg(chart());
        if let Some(v) = values {
            cmd.arg("-f").arg(ci_values(v));
        }
        let out = cmd.output().expect("helm runs");
        assert!(
            out.status.success(),
            "helm lint {values:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

#[test]
fn every_rendered_object_parses_as_its_kubernetes_type_without_unknown_fields() {
    for (what, render) in all_values() {
        let objects = render.objects();
        let kinds = check_types(&objects);
        assert!(kinds.iter().any(|k| k == "DaemonSet"), "{what}: {kinds:?}");
    }
}

#[test]
fn every_rendered_command_line_starts_keyvol() {
    let ca = rcgen::generate_simple_self_signed(vec!["vault.example".to_owned()])
        .expect("certificate")
        .cert
        .pem();
    for (what, render) in all_values() {
        let ds = daemonset(&render.objects());
        let args = args(&ds);
        let dir = tempfile::tempdir().expect("tempdir");
        // What the container's mounts provide: the CA bundle's directory.
        let ca_dir = dir.path().join("azure-ca");
        std::fs::create_dir(&ca_dir).expect("mkdir");
        std::fs::write(ca_dir.join("ca.crt"), &ca).expect("ca");
        let mut expanded: Vec<String> = args
            .iter()
            .map(|a| {
                a.replace("$(KUBE_NODE_NAME)", "node-a")
                    .replace("/etc/keyvol/azure-ca/", &format!("{}/", ca_dir.display()))
            })
            .collect();
        // The chart's sockets and ports would collide with the machine's; later flags win.
        let socket = match args[0].as_str() {
            "node" => {
                let socket = dir.path().join("csi.sock");
                expanded.extend([
                    format!("--endpoint=unix://{}", socket.display()),
                    format!(
                        "--plugin-registration-dir={}",
                        dir.path().join("registry").display()
                    ),
                    format!("--metrics-addr=127.0.0.1:{}", free_port()),
                    format!("--health-addr=127.0.0.1:{}", free_port()),
                ]);
                socket
            }
            "provider" => {
                let socket = dir.path().join("azure.sock");
                expanded.extend([
                    format!("--endpoint=unix://{}", socket.display()),
                    format!("--healthz-port={}", free_port()),
                    format!("--prometheus-port={}", free_port()),
                ]);
                socket
            }
            other => panic!("{what}: the container runs `keyvol {other}`"),
        };
        let mut child = keyvol()
            .args(&expanded)
            .env("KUBECONFIG", dir.path().join("no-kubeconfig"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut serving = false;
        for _ in 0..400 {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                serving = true;
                break;
            }
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let out = child.wait_with_output().expect("output");
        assert!(
            serving,
            "{what}: keyvol {expanded:?} did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_bad_value_reaches_keyvol_as_a_refused_flag() {
    // The control for the test above: a command line the binary refuses does not start.
    let ds = daemonset(&Render::new().set("rotationPollInterval=often").objects());
    let out = run(keyvol().args(args(&ds)));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rotation-poll-interval"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_defaults_run_one_privileged_container_on_the_host_network() {
    let objects = Render::new().objects();
    let ds = daemonset(&objects);
    assert_eq!(
        ds.metadata.name.as_deref(),
        Some("rel-secrets-store-csi-driver")
    );
    let spec = ds.spec.as_ref().expect("spec");
    let selector = spec.selector.match_labels.clone().expect("selector");
    assert_eq!(
        selector.get("app").map(String::as_str),
        Some("secrets-store-csi-driver")
    );
    let pod = spec.template.spec.as_ref().expect("pod spec");
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-node-critical")
    );
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("secrets-store-csi-driver")
    );
    let affinity = serde_json::to_string(&pod.affinity).expect("json");
    assert!(affinity.contains("virtual-kubelet"), "{affinity}");

    let c = container(&ds);
    assert_eq!(c.image.as_deref(), Some("keyvol:0.1.0"));
    let sc = c.security_context.expect("security context");
    assert_eq!(sc.privileged, Some(true));
    assert_eq!(sc.run_as_user, Some(0));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    let pods_mount = c
        .volume_mounts
        .expect("mounts")
        .into_iter()
        .find(|m| m.mount_path == "/var/lib/kubelet/pods")
        .expect("the pods directory");
    assert_eq!(
        pods_mount.mount_propagation.as_deref(),
        Some("Bidirectional")
    );

    let args = args(&ds);
    assert_eq!(args[0], "node");
    assert_eq!(flag(&args, "metrics-addr"), Some(":8095"));
    assert_eq!(flag(&args, "health-addr"), Some(":9808"));
    assert_eq!(flag(&args, "enable-secret-rotation"), Some("false"));
    assert_eq!(
        flag(&args, "plugin-registration-dir"),
        Some("/registration")
    );
    assert_eq!(
        flag(&args, "kubelet-registration-path"),
        Some("/var/lib/kubelet/plugins/csi-secrets-store/csi.sock")
    );
    let ports: Vec<i32> = c
        .ports
        .expect("ports")
        .iter()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(ports, [9808, 8095]);
}

#[test]
fn the_csidriver_follows_rotation_and_token_requests() {
    let driver: CSIDriver = typed(only(&Render::new().objects(), "CSIDriver"));
    assert_eq!(
        driver.metadata.name.as_deref(),
        Some("secrets-store.csi.k8s.io")
    );
    assert_eq!(driver.spec.attach_required, Some(false));
    assert_eq!(driver.spec.pod_info_on_mount, Some(true));
    assert_eq!(
        driver.spec.fs_group_policy.as_deref(),
        Some("File"),
        "fsGroup honoured"
    );
    assert_eq!(
        driver.spec.volume_lifecycle_modes,
        Some(vec!["Ephemeral".to_owned()])
    );
    assert_eq!(driver.spec.requires_republish, Some(false));
    let audiences: Vec<String> = driver
        .spec
        .token_requests
        .expect("token requests")
        .into_iter()
        .map(|t| t.audience)
        .collect();
    assert_eq!(audiences, ["api://AzureADTokenExchange"]);

    let driver: CSIDriver = typed(only(
        &Render::new().set("enableSecretRotation=true").objects(),
        "CSIDriver",
    ));
    assert_eq!(driver.spec.requires_republish, Some(true));

    let driver: CSIDriver = typed(only(
        &Render::new().set("tokenRequests=null").objects(),
        "CSIDriver",
    ));
    assert_eq!(driver.spec.token_requests, None);

    // Kubernetes 1.35 takes the tokens in the request's secrets; older servers lack the field.
    let on_135 = Render::new().kube("1.35.0").objects();
    let spec = &only(&on_135, "CSIDriver")["spec"];
    assert_eq!(spec["serviceAccountTokenInSecrets"], Value::Bool(true));
    let on_133 = Render::new().objects();
    assert!(
        only(&on_133, "CSIDriver")["spec"]
            .get("serviceAccountTokenInSecrets")
            .is_none()
    );
}

fn rules(objects: &[Value], role: &str) -> Vec<(String, Vec<String>)> {
    let role: ClusterRole = typed(find(objects, "ClusterRole", role).expect(role));
    role.rules
        .unwrap_or_default()
        .into_iter()
        .flat_map(|r| {
            let verbs = r.verbs.clone();
            r.resources
                .unwrap_or_default()
                .into_iter()
                .map(move |res| (res, verbs.clone()))
        })
        .collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn rbac_grants_only_the_calls_keyvol_makes() {
    let objects = Render::new().objects();
    assert_eq!(
        rules(&objects, "secretproviderclasses-role"),
        vec![
            ("events".to_owned(), strs(&["create"])),
            ("pods".to_owned(), strs(&["get"])),
            (
                "secretproviderclasses".to_owned(),
                strs(&["get", "list", "watch"])
            ),
            (
                "secretproviderclasspodstatuses".to_owned(),
                strs(&["create", "get", "update"])
            ),
        ]
    );
    let binding: ClusterRoleBinding = typed(
        find(
            &objects,
            "ClusterRoleBinding",
            "secretproviderclasses-rolebinding",
        )
        .expect("binding"),
    );
    let subject = &binding.subjects.expect("subjects")[0];
    assert_eq!(subject.name, "secrets-store-csi-driver");
    assert_eq!(subject.namespace.as_deref(), Some("kube-system"));
    // No Secrets role unless sync is on.
    assert!(find(&objects, "ClusterRole", "secretprovidersyncing-role").is_none());
    assert!(
        !serde_json::to_string(&objects)
            .expect("json")
            .contains("\"secrets\"")
    );

    let synced = Render::new().set("syncSecret.enabled=true").objects();
    assert_eq!(
        rules(&synced, "secretprovidersyncing-role"),
        vec![("secrets".to_owned(), strs(&["create", "get", "update"]))]
    );
    assert!(
        find(
            &synced,
            "ClusterRoleBinding",
            "secretprovidersyncing-rolebinding"
        )
        .is_some()
    );

    // Namespace admins and editors manage classes; viewers see classes and statuses.
    for (role, aggregate, resource) in [
        (
            "secretproviderclasses-admin-role",
            "aggregate-to-edit",
            "secretproviderclasses",
        ),
        (
            "secretproviderclasses-viewer-role",
            "aggregate-to-view",
            "secretproviderclasses",
        ),
        (
            "secretproviderclasspodstatuses-viewer-role",
            "aggregate-to-view",
            "secretproviderclasspodstatuses",
        ),
    ] {
        let o = find(&objects, "ClusterRole", role).expect(role);
        assert_eq!(
            o["metadata"]["labels"][format!("rbac.authorization.k8s.io/{aggregate}")],
            "true",
            "{role}"
        );
        assert_eq!(rules(&objects, role)[0].0, resource);
    }

    // rbac.install: false leaves all of it (and the ServiceAccount) to the operator.
    let none = Render::new().set("rbac.install=false").objects();
    assert!(none.iter().all(|o| !matches!(
        kind_of(o),
        "ClusterRole" | "ClusterRoleBinding" | "ServiceAccount"
    )));
}

#[test]
fn the_driver_charts_values_map_to_keyvols_flags() {
    let objects = Render::new().values(DRIVER_CHART).objects();
    let ds = daemonset(&objects);
    let args = args(&ds);
    let expect = [
        ("log-format-json", Some("true")),
        (
            "kubelet-registration-path",
            Some("/var/lib/k0s/kubelet/plugins/csi-secrets-store/csi.sock"),
        ),
        (
            "provider-volume",
            Some("/var/run/secrets-store-csi-providers"),
        ),
        (
            "additional-provider-volume-paths",
            Some("/etc/kubernetes/secrets-store-csi-providers,/opt/providers"),
        ),
        ("metrics-addr", Some(":8096")),
        ("health-addr", Some(":9809")),
        ("enable-secret-rotation", Some("true")),
        ("rotation-poll-interval", Some("30s")),
        ("provider-health-check", Some("true")),
        ("provider-health-check-interval", Some("1m")),
        ("max-call-recv-msg-size", Some("8388608")),
    ];
    for (name, value) in expect {
        assert_eq!(flag(&args, name), value, "--{name} in {args:?}");
    }
    assert!(args.contains(&"-v=5".to_owned()), "{args:?}");
    let c = container(&ds);
    // The mirrored upstream driver image is not started with keyvol's command line.
    assert_eq!(c.image.as_deref(), Some("keyvol:0.1.0"));
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    let resources = serde_json::to_value(c.resources).expect("json");
    assert_eq!(
        resources["limits"]["memory"], "220Mi",
        "linux.driver.resources wins"
    );
    let env = serde_json::to_string(&c.env).expect("json");
    assert!(env.contains("HTTPS_PROXY"), "{env}");
    let mounts = serde_json::to_string(&c.volume_mounts).expect("json");
    assert!(mounts.contains("/var/lib/k0s/kubelet/pods"), "{mounts}");
    assert!(mounts.contains("\"/extra\""), "{mounts}");

    let spec = ds.spec.as_ref().expect("spec");
    let pod = spec.template.spec.as_ref().expect("pod");
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("platform-critical")
    );
    let node_selector = pod.node_selector.clone().expect("node selector");
    assert_eq!(node_selector["kubernetes.io/os"], "linux");
    assert_eq!(node_selector["node.example.com/pool"], "apps");
    assert_eq!(pod.tolerations.as_ref().expect("tolerations").len(), 1);
    assert_eq!(
        pod.image_pull_secrets.as_ref().expect("pull secrets")[0].name,
        "mirror-pull"
    );
    let volumes = serde_json::to_string(&pod.volumes).expect("json");
    assert!(
        volumes.contains("/var/lib/k0s/kubelet/plugins_registry/"),
        "{volumes}"
    );
    let labels = spec
        .template
        .metadata
        .as_ref()
        .expect("meta")
        .labels
        .clone();
    assert_eq!(labels.expect("labels")["team"], "platform");
    assert_eq!(
        ds.metadata.annotations.expect("annotations")["example.com/owner"],
        "platform"
    );
    assert_eq!(
        serde_json::to_value(&spec.update_strategy).expect("json")["rollingUpdate"]["maxUnavailable"],
        2
    );
    // commonLabels reach every object.
    for o in &objects {
        assert_eq!(
            o["metadata"]["labels"]["cost-center"],
            "42",
            "{}",
            name_of(o)
        );
    }
    let driver: CSIDriver = typed(only(&objects, "CSIDriver"));
    assert_eq!(driver.spec.requires_republish, Some(true));
    assert!(find(&objects, "ClusterRole", "secretprovidersyncing-role").is_some());
}

#[test]
fn the_azure_charts_values_map_to_keyvols_flags() {
    let objects = Render::new().values(AZURE_CHART).objects();
    let ds = daemonset(&objects);
    // The embedded driver's fullnameOverride: the DaemonSet keeps the Azure chart's name.
    assert_eq!(
        ds.metadata.name.as_deref(),
        Some("secrets-store-csi-driver")
    );
    let args = args(&ds);
    assert_eq!(args[0], "node");
    // Upstream's chart dropped `false` here, so chains were always rebuilt (finding).
    assert_eq!(flag(&args, "construct-pem-chain"), Some("false"));
    assert_eq!(
        flag(&args, "write-cert-and-key-in-separate-files"),
        Some("true")
    );
    assert!(args.contains(&"-v=2".to_owned()), "{args:?}");
    // Nested driver keys win over the provider's top-level ones.
    assert_eq!(flag(&args, "metrics-addr"), Some(":8080"));
    assert_eq!(flag(&args, "enable-secret-rotation"), Some("true"));
    assert_eq!(flag(&args, "rotation-poll-interval"), Some("2m"));
    // The provider's health port, where nothing else sets one.
    assert_eq!(flag(&args, "health-addr"), Some(":8989"));
    assert!(!args.iter().any(|a| a.contains("custom-user-agent")));
    let c = container(&ds);
    assert_eq!(c.image.as_deref(), Some("keyvol:0.1.0"));
    let pod = ds
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .clone()
        .expect("pod");
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-node-critical")
    );
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));

    let driver: CSIDriver = typed(only(&objects, "CSIDriver"));
    assert_eq!(driver.spec.requires_republish, Some(true));
    assert_eq!(driver.spec.token_requests.expect("tokens").len(), 2);
    assert!(find(&objects, "ClusterRole", "secretprovidersyncing-role").is_some());
}

#[test]
fn the_azure_chart_without_its_driver_runs_keyvol_as_the_provider() {
    let objects = Render::new().values(AZURE_PROVIDER_ONLY).objects();
    // The driver belongs to another release: no CSIDriver, CRDs or driver RBAC here.
    let kinds: Vec<&str> = objects.iter().map(kind_of).collect();
    assert_eq!(kinds, ["DaemonSet"]);
    let ds = daemonset(&objects);
    assert_eq!(
        ds.metadata.name.as_deref(),
        Some("rel-csi-secrets-store-provider-azure")
    );
    let args = args(&ds);
    assert_eq!(args[0], "provider");
    assert_eq!(flag(&args, "endpoint"), Some("unix:///provider/azure.sock"));
    assert_eq!(flag(&args, "healthz-port"), Some("8990"));
    assert_eq!(flag(&args, "healthz-timeout"), Some("7s"));
    assert_eq!(flag(&args, "custom-user-agent"), Some("contoso"));
    let c = container(&ds);
    let sc = c.security_context.expect("security context");
    assert_eq!(sc.privileged, None);
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    let pod = ds
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .clone()
        .expect("pod");
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.host_network, Some(true));
}

#[test]
fn keyvols_own_values_reach_the_command_line() {
    let objects = Render::new()
        .set("azureCABundle.pem=-----BEGIN CERTIFICATE-----")
        .set("tmpfsSize=67108864")
        .set("rotationLoopInterval=5m")
        .set("livenessProbe.port=19808")
        .set("linux.metricsAddr=127.0.0.1:18095")
        .set("extraArgs[0]=--metrics-addr=:28095")
        .objects();
    let ds = daemonset(&objects);
    let args = args(&ds);
    assert_eq!(
        flag(&args, "azure-ca-file"),
        Some("/etc/keyvol/azure-ca/ca.crt")
    );
    assert_eq!(flag(&args, "tmpfs-size"), Some("67108864"));
    assert_eq!(flag(&args, "rotation-loop-interval"), Some("5m"));
    assert_eq!(flag(&args, "health-addr"), Some(":19808"));
    // extraArgs come last, so they win.
    assert_eq!(flag(&args, "metrics-addr"), Some(":28095"));
    let cm: ConfigMap = typed(
        find(
            &objects,
            "ConfigMap",
            "rel-secrets-store-csi-driver-azure-ca",
        )
        .expect("ConfigMap"),
    );
    assert!(cm.data.expect("data")["ca.crt"].starts_with("-----BEGIN CERTIFICATE-----"));
    let mounts = serde_json::to_string(&container(&ds).volume_mounts).expect("json");
    assert!(mounts.contains("/etc/keyvol/azure-ca"), "{mounts}");

    // An existing Secret instead of inline PEM.
    let ds = daemonset(
        &Render::new()
            .set("azureCABundle.secret=corp-ca")
            .set("azureCABundle.key=bundle.pem")
            .objects(),
    );
    assert_eq!(
        flag(&self::args(&ds), "azure-ca-file"),
        Some("/etc/keyvol/azure-ca/bundle.pem")
    );
    let volumes =
        serde_json::to_string(&ds.spec.expect("spec").template.spec.expect("pod").volumes)
            .expect("json");
    assert!(volumes.contains("\"secretName\":\"corp-ca\""), "{volumes}");
}

#[test]
fn the_charts_crds_are_what_keyvol_crd_prints() {
    let out = run(keyvol().arg("crd"));
    assert!(out.status.success(), "{}", stderr(&out));
    let generated = stdout(&out);
    let copy = std::fs::read_to_string(chart().join("files/crds.yaml")).expect("crds");
    assert_eq!(
        generated, copy,
        "regenerate with: keyvol crd > charts/keyvol/files/crds.yaml"
    );
    // The rendered CRDs are those documents plus the chart's labels and keep annotation.
    let rendered: Vec<Value> = Render::new()
        .objects()
        .into_iter()
        .filter(|o| kind_of(o) == "CustomResourceDefinition")
        .collect();
    let expected = parse_documents(&generated);
    assert_eq!(rendered.len(), expected.len());
    for (r, e) in rendered.iter().zip(&expected) {
        assert_eq!(r["spec"], e["spec"], "{}", name_of(e));
        assert_eq!(
            r["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep",
            "{}",
            name_of(e)
        );
    }
    // linux.crds.enabled=false (the upstream driver chart's switch) leaves them out.
    assert!(
        Render::new()
            .set("linux.crds.enabled=false")
            .objects()
            .iter()
            .all(|o| kind_of(o) != "CustomResourceDefinition")
    );
}

#[test]
fn the_plain_manifests_are_the_chart_rendered_under_upstreams_static_names() {
    let out = Command::new("bash")
        .arg(repo().join("scripts/render-manifests"))
        .env(
            "KEYVOL_HELM",
            std::env::var_os("KEYVOL_HELM").expect("KEYVOL_HELM (see helm())"),
        )
        .output()
        .expect("render-manifests runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let committed =
        std::fs::read_to_string(repo().join("deploy/kubernetes/keyvol.yaml")).expect("keyvol.yaml");
    assert!(
        stdout(&out) == committed,
        "deploy/kubernetes/keyvol.yaml is not the chart rendered: run ./scripts/render-manifests --write"
    );

    let objects = parse_documents(&committed);
    check_types(&objects);
    let ds: DaemonSet = typed(find(&objects, "DaemonSet", "csi-secrets-store").expect("DaemonSet"));
    assert_eq!(ds.metadata.namespace.as_deref(), Some("kube-system"));
    let selector = ds
        .spec
        .as_ref()
        .expect("spec")
        .selector
        .match_labels
        .clone();
    assert_eq!(
        selector.expect("selector").get("app").map(String::as_str),
        Some("csi-secrets-store")
    );
    for (kind, name) in [
        ("ServiceAccount", "secrets-store-csi-driver"),
        ("ClusterRole", "secretproviderclasses-role"),
        ("ClusterRoleBinding", "secretproviderclasses-rolebinding"),
        ("ClusterRole", "secretproviderclasses-admin-role"),
        ("ClusterRole", "secretproviderclasses-viewer-role"),
        ("ClusterRole", "secretproviderclasspodstatuses-viewer-role"),
        ("CSIDriver", "secrets-store.csi.k8s.io"),
    ] {
        assert!(find(&objects, kind, name).is_some(), "{kind} {name}");
    }
    // The CRDs stay in crds.yaml.
    assert!(
        objects
            .iter()
            .all(|o| kind_of(o) != "CustomResourceDefinition")
    );
}
