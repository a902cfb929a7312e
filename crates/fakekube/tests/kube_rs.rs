//! The fake driven by real kube-rs clients over HTTP: CRUD with the API server's errors,
//! selectors, paging, patches (merge, JSON, apply), the status subresource, deletes with
//! finalizers and preconditions, garbage collection, watches (`Api::watch`,
//! `kube::runtime::watcher`, reflector stores), discovery, events, and faults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::{ByteString, NamespaceResourceScope};
use keyvol_fakekube::{FakeKube, Fault, GcMode, ResourceDef, Verb};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent,
    WatchParams,
};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{CustomResource, Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

const NS: &str = "app";

/// How long any single wait in these tests may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Minimal typed CRDs, as keyvol's own crates would declare them.
// ---------------------------------------------------------------------------------------------

/// SecretProviderClass v1.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "secrets-store.csi.x-k8s.io",
    version = "v1",
    kind = "SecretProviderClass",
    namespaced,
    schema = "disabled"
)]
struct SecretProviderClassSpec {
    #[serde(default)]
    provider: String,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
}

mod v1alpha1 {
    use super::*;

    /// SecretProviderClass v1alpha1 (same schema, deprecated version).
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
    #[kube(
        group = "secrets-store.csi.x-k8s.io",
        version = "v1alpha1",
        kind = "SecretProviderClass",
        namespaced,
        schema = "disabled"
    )]
    pub struct SecretProviderClassSpec {
        #[serde(default)]
        pub provider: String,
        #[serde(default)]
        pub parameters: BTreeMap<String, String>,
    }
}

/// SecretProviderClassPodStatus: upstream it has no spec, only status, so it is written by hand.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
struct SecretProviderClassPodStatus {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    #[serde(default)]
    status: SpcpsStatus,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
struct SpcpsStatus {
    #[serde(default)]
    pod_name: String,
    #[serde(default)]
    secret_provider_class_name: String,
    #[serde(default)]
    mounted: bool,
    #[serde(default)]
    objects: Vec<SpcpsObject>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
struct SpcpsObject {
    id: String,
    version: String,
}

impl Resource for SecretProviderClassPodStatus {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        "SecretProviderClassPodStatus".into()
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        "secrets-store.csi.x-k8s.io".into()
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        "secretproviderclasspodstatuses".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl SecretProviderClassPodStatus {
    fn new(name: &str, pod: &Pod) -> Self {
        Self {
            api_version: "secrets-store.csi.x-k8s.io/v1".into(),
            kind: "SecretProviderClassPodStatus".into(),
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(NS.into()),
                labels: Some(BTreeMap::from([(
                    "internal.secrets-store.csi.k8s.io/node-name".to_owned(),
                    "node-1".to_owned(),
                )])),
                owner_references: Some(vec![owner(pod)]),
                ..ObjectMeta::default()
            },
            status: SpcpsStatus {
                pod_name: pod.name_any(),
                secret_provider_class_name: "azure".into(),
                mounted: true,
                objects: vec![SpcpsObject {
                    id: "secret/db".into(),
                    version: "v1".into(),
                }],
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(NS.into()),
        ..ObjectMeta::default()
    }
}

fn secret(name: &str, labels: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..meta(name)
        },
        data: Some(BTreeMap::from([(
            "k".to_owned(),
            ByteString(b"v".to_vec()),
        )])),
        ..Secret::default()
    }
}

fn pod(name: &str, node: &str) -> Pod {
    Pod {
        metadata: meta(name),
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

fn spc(name: &str) -> SecretProviderClass {
    SecretProviderClass::new(
        name,
        SecretProviderClassSpec {
            provider: "azure".into(),
            parameters: BTreeMap::from([("keyvaultName".to_owned(), "kv".to_owned())]),
        },
    )
    .within(NS)
}

trait Within {
    fn within(self, ns: &str) -> Self;
}

impl Within for SecretProviderClass {
    fn within(mut self, ns: &str) -> Self {
        self.metadata.namespace = Some(ns.into());
        self
    }
}

fn owner<K: Resource<DynamicType = ()>>(object: &K) -> OwnerReference {
    object
        .controller_owner_ref(&())
        .expect("owner has name and uid")
}

fn code<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The next watch event that is not a bookmark.
async fn next_event<S>(stream: &mut S) -> WatchEvent<Secret>
where
    S: futures::Stream<Item = Result<WatchEvent<Secret>, kube::Error>> + Unpin,
{
    loop {
        match within(stream.try_next())
            .await
            .unwrap()
            .expect("stream ended")
        {
            WatchEvent::Bookmark(_) => {}
            event => return event,
        }
    }
}

async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("timed out")
}

async fn start() -> (FakeKube, kube::Client) {
    let fake = FakeKube::start().await.unwrap();
    let client = fake.client().unwrap();
    (fake, client)
}

// ---------------------------------------------------------------------------------------------
// CRUD
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn get_returns_an_inserted_secret_and_404_not_found_for_a_missing_one() {
    let (fake, client) = start().await;
    fake.insert(&secret("db", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);

    let got = secrets.get("db").await.unwrap();
    assert_eq!(got.data.unwrap()["k"].0, b"v");
    assert!(got.metadata.uid.is_some());
    assert_eq!(code(secrets.get("nope").await), (404, "NotFound".into()));
    assert!(secrets.get_opt("nope").await.unwrap().is_none());
}

#[tokio::test]
async fn create_assigns_server_fields_and_a_second_create_is_409_already_exists() {
    let (fake, client) = start().await;
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let before = fake.resource_version();

    let created = secrets
        .create(&PostParams::default(), &secret("db", &[]))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert_eq!(meta.uid.as_ref().unwrap().len(), 36);
    assert_eq!(
        meta.resource_version.as_deref(),
        Some((before + 1).to_string().as_str())
    );
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));

    assert_eq!(
        code(
            secrets
                .create(&PostParams::default(), &secret("db", &[]))
                .await
        ),
        (409, "AlreadyExists".into())
    );
}

#[tokio::test]
async fn generate_name_gets_a_random_suffix() {
    let (_fake, client) = start().await;
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let mut template = secret("", &[]);
    template.metadata.name = None;
    template.metadata.generate_name = Some("sync-".into());
    let a = secrets
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    let b = secrets
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    assert!(a.name_any().starts_with("sync-") && a.name_any().len() == 10);
    assert_ne!(a.name_any(), b.name_any());
}

#[tokio::test]
async fn create_validates_names_and_namespaces_like_the_api_server() {
    let (_fake, client) = start().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    assert_eq!(
        code(
            secrets
                .create(&PostParams::default(), &secret("Bad_Name", &[]))
                .await
        ),
        (422, "Invalid".into())
    );
    let elsewhere: Api<Secret> = Api::namespaced(client, "other");
    assert_eq!(
        code(
            elsewhere
                .create(&PostParams::default(), &secret("db", &[]))
                .await
        ),
        (400, "BadRequest".into())
    );
}

#[tokio::test]
async fn secret_string_data_is_folded_into_data() {
    let (fake, client) = start().await;
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let mut s = secret("db", &[]);
    s.string_data = Some(BTreeMap::from([(
        "password".to_owned(),
        "hunter2".to_owned(),
    )]));
    let created = secrets.create(&PostParams::default(), &s).await.unwrap();
    assert!(created.string_data.is_none());
    assert_eq!(created.data.unwrap()["password"].0, b"hunter2");
    let stored = fake.get_json("v1", "secrets", NS, "db").unwrap();
    assert_eq!(stored["data"]["password"], "aHVudGVyMg==");
    assert!(stored.get("stringData").is_none());
}

// ---------------------------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn list_filters_with_equality_and_set_based_label_selectors() {
    let (fake, client) = start().await;
    fake.insert(&secret("a", &[("app", "web"), ("env", "prod")]))
        .unwrap();
    fake.insert(&secret("b", &[("app", "web"), ("env", "dev")]))
        .unwrap();
    fake.insert(&secret("c", &[("app", "db")])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);

    let names = |list: kube::core::ObjectList<Secret>| -> Vec<String> {
        list.items.iter().map(ResourceExt::name_any).collect()
    };
    let by = |selector: &'static str| {
        let secrets = secrets.clone();
        async move {
            names(
                secrets
                    .list(&ListParams::default().labels(selector))
                    .await
                    .unwrap(),
            )
        }
    };
    assert_eq!(by("app=web").await, ["a", "b"]);
    assert_eq!(by("app!=web").await, ["c"]);
    assert_eq!(by("env").await, ["a", "b"]);
    assert_eq!(by("!env").await, ["c"]);
    assert_eq!(by("env in (prod,qa)").await, ["a"]);
    assert_eq!(by("app=web,env notin (prod)").await, ["b"]);

    let list = secrets.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        list.metadata.resource_version.as_deref(),
        Some(fake.resource_version().to_string().as_str())
    );
    assert_eq!(
        code(secrets.list(&ListParams::default().labels("a in (x")).await),
        (400, "BadRequest".into())
    );
}

#[tokio::test]
async fn list_filters_pods_by_node_name_across_namespaces() {
    let (fake, client) = start().await;
    fake.insert(&pod("p1", "node-1")).unwrap();
    fake.insert(&pod("p2", "node-2")).unwrap();
    let mut other = pod("p3", "node-1");
    other.metadata.namespace = Some("other".into());
    fake.insert(&other).unwrap();

    let all: Api<Pod> = Api::all(client.clone());
    let on_node = all
        .list(&ListParams::default().fields("spec.nodeName=node-1"))
        .await
        .unwrap();
    let mut names: Vec<String> = on_node.items.iter().map(ResourceExt::name_any).collect();
    names.sort();
    assert_eq!(names, ["p1", "p3"]);

    let named = all
        .list(&ListParams::default().fields("metadata.name=p2,metadata.namespace=app"))
        .await
        .unwrap();
    assert_eq!(named.items.len(), 1);

    assert_eq!(
        code(
            all.list(&ListParams::default().fields("spec.hostname=x"))
                .await
        ),
        (400, "BadRequest".into())
    );
}

#[tokio::test]
async fn list_pages_with_limit_and_continue() {
    let (fake, client) = start().await;
    for i in 0..5 {
        fake.insert(&secret(&format!("s{i}"), &[])).unwrap();
    }
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(2);
        lp.continue_token = token.clone();
        let page = secrets.list(&lp).await.unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(ResourceExt::name_any));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["s0", "s1", "s2", "s3", "s4"]);
}

// ---------------------------------------------------------------------------------------------
// Update and patch
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn replace_with_a_stale_resource_version_is_409_conflict() {
    let (fake, client) = start().await;
    fake.insert(&secret("db", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);

    let first = secrets.get("db").await.unwrap();
    let mut changed = first.clone();
    changed.data = Some(BTreeMap::from([(
        "k".to_owned(),
        ByteString(b"2".to_vec()),
    )]));
    let updated = secrets
        .replace("db", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_ne!(updated.resource_version(), first.resource_version());

    // `first` still carries the old resourceVersion.
    assert_eq!(
        code(secrets.replace("db", &PostParams::default(), &first).await),
        (409, "Conflict".into())
    );
    // Without a resourceVersion the update is unconditional, as upstream allows.
    let mut unconditional = first.clone();
    unconditional.metadata.resource_version = None;
    secrets
        .replace("db", &PostParams::default(), &unconditional)
        .await
        .unwrap();

    assert_eq!(
        code(
            secrets
                .replace("missing", &PostParams::default(), &secret("missing", &[]))
                .await
        ),
        (404, "NotFound".into())
    );
}

#[tokio::test]
async fn a_no_op_update_does_not_bump_the_resource_version() {
    let (fake, client) = start().await;
    fake.insert(&secret("db", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let current = secrets.get("db").await.unwrap();
    let again = secrets
        .replace("db", &PostParams::default(), &current)
        .await
        .unwrap();
    assert_eq!(again.resource_version(), current.resource_version());
    let patched = secrets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "dg=="}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.resource_version(), current.resource_version());
}

#[tokio::test]
async fn merge_patch_updates_labels_and_a_stale_resource_version_in_it_conflicts() {
    let (fake, client) = start().await;
    fake.insert(&secret("db", &[("a", "1"), ("b", "2")]))
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let before = secrets.get("db").await.unwrap();

    let patched = secrets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": null, "c": "3"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.labels(),
        &BTreeMap::from([
            ("b".to_owned(), "2".to_owned()),
            ("c".to_owned(), "3".to_owned())
        ])
    );
    assert_eq!(code(secrets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"resourceVersion": before.resource_version()}, "type": "x"})),
    ).await), (409, "Conflict".into()));
    assert_eq!(
        code(
            secrets
                .patch("nope", &PatchParams::default(), &Patch::Merge(json!({})))
                .await
        ),
        (404, "NotFound".into())
    );
}

#[tokio::test]
async fn strategic_merge_patch_is_applied_as_a_merge_patch() {
    let (fake, client) = start().await;
    fake.insert(&secret("db", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let patched = secrets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"annotations": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.annotations()["x"], "y");
}

#[tokio::test]
async fn json_patch_applies_and_a_failed_test_is_422() {
    let (fake, client) = start().await;
    fake.insert(&secret("db", &[("a", "1")])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/labels/a", "value": "1"},
        {"op": "replace", "path": "/metadata/labels/a", "value": "2"},
    ]))
    .unwrap();
    let patched = secrets
        .patch("db", &PatchParams::default(), &Patch::Json::<()>(ops))
        .await
        .unwrap();
    assert_eq!(patched.labels()["a"], "2");

    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/metadata/labels/a", "value": "1"}]))
            .unwrap();
    assert_eq!(
        code(
            secrets
                .patch("db", &PatchParams::default(), &Patch::Json::<()>(failing))
                .await
        )
        .0,
        422
    );
}

#[tokio::test]
async fn server_side_apply_creates_then_merges_and_needs_a_field_manager() {
    let (_fake, client) = start().await;
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let apply = PatchParams::apply("keyvol-test").force();

    let created = secrets
        .patch(
            "synced",
            &apply,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "synced", "labels": {"secrets-store.csi.k8s.io/managed": "true"}},
                "stringData": {"a": "1"},
            })),
        )
        .await
        .unwrap();
    assert_eq!(created.data.as_ref().unwrap()["a"].0, b"1");

    let merged = secrets
        .patch(
            "synced",
            &apply,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "synced"},
                "stringData": {"b": "2"},
            })),
        )
        .await
        .unwrap();
    let data = merged.data.clone().unwrap();
    assert_eq!(
        (data["a"].0.as_slice(), data["b"].0.as_slice()),
        (&b"1"[..], &b"2"[..])
    );
    assert_eq!(merged.labels()["secrets-store.csi.k8s.io/managed"], "true");
    assert_eq!(merged.uid(), created.uid());

    let no_manager = secrets
        .patch(
            "synced",
            &PatchParams::default(),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "synced"}}),
            ),
        )
        .await;
    assert_eq!(code(no_manager).0, 400);
}

// ---------------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn pod_status_is_a_separate_subresource() {
    let (fake, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client, NS);
    pods.create(&PostParams::default(), &pod("web-0", "node-1"))
        .await
        .unwrap();

    let status_patch = json!({"status": {"phase": "Running"}});
    let after_status = pods
        .patch_status(
            "web-0",
            &PatchParams::default(),
            &Patch::Merge(&status_patch),
        )
        .await
        .unwrap();
    assert_eq!(
        after_status.status.unwrap().phase.as_deref(),
        Some("Running")
    );

    // Writes to the main resource leave the status alone ...
    let main = pods
        .patch(
            "web-0",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"x": "y"}}, "status": {"phase": "Failed"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        main.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );
    assert_eq!(main.labels()["x"], "y");

    // ... and writes to /status leave everything else alone.
    let mut replacement = pods.get_status("web-0").await.unwrap();
    replacement.metadata.labels = None;
    replacement.status = Some(PodStatus {
        phase: Some("Succeeded".into()),
        ..PodStatus::default()
    });
    let replaced = pods
        .replace_status("web-0", &PostParams::default(), &replacement)
        .await
        .unwrap();
    assert_eq!(
        replaced.status.as_ref().unwrap().phase.as_deref(),
        Some("Succeeded")
    );
    assert_eq!(replaced.labels()["x"], "y");

    assert_eq!(fake.requests(Verb::Patch, "pods/status"), 1);
    assert_eq!(fake.requests(Verb::Update, "pods/status"), 1);
    assert_eq!(fake.requests(Verb::Patch, "pods"), 1);
}

#[tokio::test]
async fn spcps_status_is_written_through_the_main_resource_like_the_upstream_crd() {
    let (fake, client) = start().await;
    let owner_pod: Pod =
        serde_json::from_value(fake.insert(&pod("web-0", "node-1")).unwrap()).unwrap();
    let statuses: Api<SecretProviderClassPodStatus> = Api::namespaced(client, NS);
    let name = "web-0-app-azure";

    let created = statuses
        .create(
            &PostParams::default(),
            &SecretProviderClassPodStatus::new(name, &owner_pod),
        )
        .await
        .unwrap();
    assert!(created.status.mounted);

    let mut updated = created.clone();
    updated.status.objects[0].version = "v2".into();
    let updated = statuses
        .replace(name, &PostParams::default(), &updated)
        .await
        .unwrap();
    assert_eq!(updated.status.objects[0].version, "v2");

    // The upstream CRD has no status subresource: /status is not served.
    assert_eq!(code(statuses.get_status(name).await).0, 404);

    let on_node = statuses
        .list(&ListParams::default().labels("internal.secrets-store.csi.k8s.io/node-name=node-1"))
        .await
        .unwrap();
    assert_eq!(on_node.items.len(), 1);
}

#[tokio::test]
async fn the_status_subresource_can_be_switched_on_for_a_crd() {
    let fake = FakeKube::builder()
        .resource(ResourceDef::SECRET_PROVIDER_CLASS_POD_STATUSES.with_status_subresource(true))
        .start()
        .await
        .unwrap();
    let owner_pod: Pod =
        serde_json::from_value(fake.insert(&pod("web-0", "node-1")).unwrap()).unwrap();
    let statuses: Api<SecretProviderClassPodStatus> = Api::namespaced(fake.client().unwrap(), NS);
    let created = statuses
        .create(
            &PostParams::default(),
            &SecretProviderClassPodStatus::new("s", &owner_pod),
        )
        .await
        .unwrap();
    // Status is dropped on create when it is a subresource ...
    assert!(!created.status.mounted);
    // ... and written through /status.
    let patched = statuses
        .patch_status(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"mounted": true}})),
        )
        .await
        .unwrap();
    assert!(patched.status.mounted);
}

// ---------------------------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn v1_and_v1alpha1_serve_the_same_secret_provider_classes() {
    let (_fake, client) = start().await;
    let v1: Api<SecretProviderClass> = Api::namespaced(client.clone(), NS);
    let alpha: Api<v1alpha1::SecretProviderClass> = Api::namespaced(client, NS);
    v1.create(&PostParams::default(), &spc("azure"))
        .await
        .unwrap();

    let seen = alpha.get("azure").await.unwrap();
    assert_eq!(seen.spec.provider, "azure");
    let listed = alpha.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);

    let mut old = v1alpha1::SecretProviderClass::new(
        "legacy",
        v1alpha1::SecretProviderClassSpec {
            provider: "azure".into(),
            parameters: BTreeMap::new(),
        },
    );
    old.metadata.namespace = Some(NS.into());
    alpha.create(&PostParams::default(), &old).await.unwrap();
    assert_eq!(v1.get("legacy").await.unwrap().spec.provider, "azure");
}

// ---------------------------------------------------------------------------------------------
// Delete and garbage collection
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn delete_answers_like_the_api_server_and_the_object_is_404_after() {
    let (fake, client) = start().await;
    fake.insert(&secret("db", &[])).unwrap();
    fake.insert(&pod("web-0", "node-1")).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client, NS);

    // Secrets answer with a Success Status, pods with the deleted object.
    let deleted = secrets
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    assert!(deleted.is_right());
    let deleted = pods
        .delete("web-0", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(deleted.left().unwrap().name_any(), "web-0");

    assert_eq!(code(secrets.get("db").await).0, 404);
    assert_eq!(
        code(secrets.delete("db", &DeleteParams::default()).await).0,
        404
    );
}

#[tokio::test]
async fn delete_preconditions_that_do_not_hold_are_409_conflict() {
    let (fake, client) = start().await;
    fake.insert(&secret("db", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    assert_eq!(
        code(secrets.delete("db", &dp).await),
        (409, "Conflict".into())
    );
    assert!(secrets.get_opt("db").await.unwrap().is_some());
}

#[tokio::test]
async fn an_object_with_finalizers_is_marked_and_goes_when_they_are_removed() {
    let (fake, client) = start().await;
    let mut s = secret("db", &[]);
    s.metadata.finalizers = Some(vec!["keyvol.io/cleanup".into()]);
    fake.insert(&s).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);

    let marked = secrets
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    let marked = marked.left().expect("a pending delete returns the object");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(secrets.get_opt("db").await.unwrap().is_some());

    secrets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert!(secrets.get_opt("db").await.unwrap().is_none());
}

#[tokio::test]
async fn deleting_a_pod_garbage_collects_its_dependents_down_the_chain() {
    let (fake, client) = start().await;
    let web: Pod = serde_json::from_value(fake.insert(&pod("web-0", "node-1")).unwrap()).unwrap();
    let status: SecretProviderClassPodStatus = serde_json::from_value(
        fake.insert(&SecretProviderClassPodStatus::new("web-0-app-azure", &web))
            .unwrap(),
    )
    .unwrap();
    // A secret owned by the status object: a two-level chain.
    let mut synced = secret("synced", &[]);
    synced.metadata.owner_references = Some(vec![owner(&status)]);
    fake.insert(&synced).unwrap();
    fake.insert(&secret("unrelated", &[])).unwrap();

    let pods: Api<Pod> = Api::namespaced(client, NS);
    pods.delete("web-0", &DeleteParams::background())
        .await
        .unwrap();

    assert!(
        fake.get::<SecretProviderClassPodStatus>(NS, "web-0-app-azure")
            .unwrap()
            .is_none()
    );
    assert!(fake.get::<Secret>(NS, "synced").unwrap().is_none());
    assert!(fake.get::<Secret>(NS, "unrelated").unwrap().is_some());
}

#[tokio::test]
async fn a_dependent_of_two_owners_goes_only_with_the_last_one() {
    let (fake, _client) = start().await;
    let a: Pod = serde_json::from_value(fake.insert(&pod("a", "node-1")).unwrap()).unwrap();
    let b: Pod = serde_json::from_value(fake.insert(&pod("b", "node-1")).unwrap()).unwrap();
    let mut shared = secret("shared", &[]);
    let mut ref_a = owner(&a);
    let mut ref_b = owner(&b);
    ref_a.controller = None;
    ref_b.controller = None;
    shared.metadata.owner_references = Some(vec![ref_a, ref_b]);
    fake.insert(&shared).unwrap();

    assert!(fake.delete::<Pod>(NS, "a").unwrap());
    let left = fake.get::<Secret>(NS, "shared").unwrap().unwrap();
    let refs = left.metadata.owner_references.unwrap();
    assert_eq!(refs.len(), 1, "the dangling reference is dropped");
    assert_eq!(refs[0].name, "b");

    assert!(fake.delete::<Pod>(NS, "b").unwrap());
    assert!(fake.get::<Secret>(NS, "shared").unwrap().is_none());
}

#[tokio::test]
async fn orphan_propagation_keeps_dependents_and_drops_the_reference() {
    let (fake, client) = start().await;
    let web: Pod = serde_json::from_value(fake.insert(&pod("web-0", "node-1")).unwrap()).unwrap();
    let mut s = secret("kept", &[]);
    s.metadata.owner_references = Some(vec![owner(&web)]);
    fake.insert(&s).unwrap();

    let pods: Api<Pod> = Api::namespaced(client, NS);
    pods.delete("web-0", &DeleteParams::orphan()).await.unwrap();
    let kept = fake.get::<Secret>(NS, "kept").unwrap().unwrap();
    assert!(kept.metadata.owner_references.is_none());
}

#[tokio::test]
async fn in_manual_gc_mode_dependents_stay_until_gc_runs() {
    let fake = FakeKube::builder()
        .gc(GcMode::Manual)
        .start()
        .await
        .unwrap();
    let web: Pod = serde_json::from_value(fake.insert(&pod("web-0", "node-1")).unwrap()).unwrap();
    let mut s = secret("dependent", &[]);
    s.metadata.owner_references = Some(vec![owner(&web)]);
    fake.insert(&s).unwrap();
    // An object whose owner never existed is collected by an explicit sweep too.
    let mut stray = secret("stray", &[]);
    stray.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: "ghost".into(),
        uid: "00000000-0000-4000-8000-000000000000".into(),
        ..OwnerReference::default()
    }]);
    fake.insert(&stray).unwrap();

    fake.delete::<Pod>(NS, "web-0").unwrap();
    assert!(fake.get::<Secret>(NS, "dependent").unwrap().is_some());
    assert_eq!(fake.gc(), 2);
    assert!(fake.get::<Secret>(NS, "dependent").unwrap().is_none());
    assert!(fake.get::<Secret>(NS, "stray").unwrap().is_none());
}

#[tokio::test]
async fn delete_collection_removes_the_selected_objects() {
    let (fake, client) = start().await;
    fake.insert(&secret("a", &[("sync", "yes")])).unwrap();
    fake.insert(&secret("b", &[("sync", "yes")])).unwrap();
    fake.insert(&secret("c", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    secrets
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("sync=yes"),
        )
        .await
        .unwrap();
    let left: Vec<String> = fake
        .list::<Secret>(Some(NS))
        .unwrap()
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert_eq!(left, ["c"]);
}

// ---------------------------------------------------------------------------------------------
// Watch
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_raw_watch_sees_added_modified_and_deleted_in_order() {
    let (fake, client) = start().await;
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let from = fake.resource_version().to_string();
    let mut stream = secrets
        .watch(&WatchParams::default(), &from)
        .await
        .unwrap()
        .boxed();

    secrets
        .create(&PostParams::default(), &secret("db", &[]))
        .await
        .unwrap();
    secrets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"type": "Opaque"})),
        )
        .await
        .unwrap();
    secrets
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();

    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        match within(stream.try_next()).await.unwrap().unwrap() {
            WatchEvent::Added(s) => kinds.push(("ADDED", s.resource_version())),
            WatchEvent::Modified(s) => kinds.push(("MODIFIED", s.resource_version())),
            WatchEvent::Deleted(s) => kinds.push(("DELETED", s.resource_version())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    let types: Vec<&str> = kinds.iter().map(|(k, _)| *k).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"]);
    let rvs: Vec<u64> = kinds
        .iter()
        .map(|(_, rv)| rv.clone().unwrap().parse().unwrap())
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");
}

#[tokio::test]
async fn a_watch_from_a_resource_version_replays_the_changes_after_it() {
    let (fake, client) = start().await;
    fake.insert(&secret("before", &[])).unwrap();
    let from = fake.resource_version().to_string();
    fake.insert(&secret("after", &[])).unwrap();

    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let mut stream = secrets
        .watch(&WatchParams::default(), &from)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Added(s) => assert_eq!(s.name_any(), "after"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_watch_from_a_compacted_resource_version_gets_410_expired() {
    let fake = FakeKube::builder().history_limit(2).start().await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(fake.client().unwrap(), NS);
    for i in 0..5 {
        fake.insert(&secret(&format!("s{i}"), &[])).unwrap();
    }
    let mut stream = secrets
        .watch(&WatchParams::default(), "1")
        .await
        .unwrap()
        .boxed();
    match within(stream.try_next()).await.unwrap().unwrap() {
        WatchEvent::Error(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        within(stream.try_next()).await.unwrap().is_none(),
        "the stream ends after the error"
    );
}

#[tokio::test]
async fn objects_leaving_a_label_selection_are_reported_as_deleted() {
    let (fake, client) = start().await;
    fake.insert(&secret("db", &[("sync", "yes")])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let from = fake.resource_version().to_string();
    let mut stream = secrets
        .watch(&WatchParams::default().labels("sync=yes"), &from)
        .await
        .unwrap()
        .boxed();

    fake.insert(&secret("db", &[("sync", "no")])).unwrap();
    fake.insert(&secret("db", &[("sync", "yes")])).unwrap();
    let first = next_event(&mut stream).await;
    let second = next_event(&mut stream).await;
    assert!(matches!(first, WatchEvent::Deleted(_)), "{first:?}");
    assert!(matches!(second, WatchEvent::Added(_)), "{second:?}");
}

#[tokio::test]
async fn a_watch_ends_after_timeout_seconds() {
    let (_fake, client) = start().await;
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let mut stream = secrets
        .watch(&WatchParams::default().timeout(1).disable_bookmarks(), "0")
        .await
        .unwrap()
        .boxed();
    let started = tokio::time::Instant::now();
    assert!(within(stream.try_next()).await.unwrap().is_none());
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn bookmarks_carry_the_latest_resource_version_when_allowed() {
    let fake = FakeKube::builder()
        .bookmark_interval(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(fake.client().unwrap(), NS);
    // A change to another resource still moves the bookmark forward.
    fake.insert(&pod("p", "node-1")).unwrap();
    let mut stream = secrets
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    fake.insert(&pod("q", "node-1")).unwrap();
    let expected = fake.resource_version().to_string();
    loop {
        match within(stream.try_next()).await.unwrap().unwrap() {
            WatchEvent::Bookmark(mark) if mark.metadata.resource_version == expected => break,
            WatchEvent::Bookmark(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn the_runtime_watcher_sees_apply_and_delete_events() {
    let (fake, client) = start().await;
    fake.insert(&secret("existing", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let mut events = watcher(secrets.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();

    let mut initial = Vec::new();
    loop {
        match within(events.try_next()).await.unwrap().unwrap() {
            watcher::Event::Init => {}
            watcher::Event::InitApply(s) => initial.push(s.name_any()),
            watcher::Event::InitDone => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(initial, ["existing"]);

    secrets
        .create(&PostParams::default(), &secret("new", &[]))
        .await
        .unwrap();
    secrets
        .delete("existing", &DeleteParams::default())
        .await
        .unwrap();
    let applied = within(events.try_next()).await.unwrap().unwrap();
    let deleted = within(events.try_next()).await.unwrap().unwrap();
    assert!(
        matches!(&applied, watcher::Event::Apply(s) if s.name_any() == "new"),
        "{applied:?}"
    );
    assert!(
        matches!(&deleted, watcher::Event::Delete(s) if s.name_any() == "existing"),
        "{deleted:?}"
    );
    assert!(fake.requests(Verb::List, "secrets") >= 1);
    assert!(fake.requests(Verb::Watch, "secrets") >= 1);
}

#[tokio::test]
async fn the_runtime_watcher_works_with_streaming_lists() {
    let (fake, client) = start().await;
    fake.insert(&spc("azure")).unwrap();
    let classes: Api<SecretProviderClass> = Api::all(client);
    let mut events = watcher(classes, watcher::Config::default().streaming_lists())
        .default_backoff()
        .boxed();
    let mut initial = Vec::new();
    loop {
        match within(events.try_next()).await.unwrap().unwrap() {
            watcher::Event::Init => {}
            watcher::Event::InitApply(s) => initial.push(s.name_any()),
            watcher::Event::InitDone => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(initial, ["azure"]);
    assert_eq!(fake.requests(Verb::List, "secretproviderclasses"), 0);
}

#[tokio::test]
async fn the_runtime_watcher_relists_after_its_resource_version_expires() {
    let fake = FakeKube::builder().history_limit(1).start().await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(fake.client().unwrap(), NS);
    fake.insert(&secret("a", &[])).unwrap();
    let store = start_reflector(secrets.clone());
    wait_for(&store, &["a"]).await;

    // Cut every connection, then change more than the history keeps while the watcher is away.
    fake.set_fault(Fault::Disconnect);
    for i in 0..3 {
        fake.insert(&secret(&format!("b{i}"), &[])).unwrap();
    }
    fake.set_fault(Fault::None);
    wait_for(&store, &["a", "b0", "b1", "b2"]).await;
    assert!(
        fake.requests(Verb::List, "secrets") >= 2,
        "the watcher relisted"
    );
}

fn start_reflector(api: Api<Secret>) -> reflector::Store<Secret> {
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .applied_objects();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    reader
}

async fn wait_for(store: &reflector::Store<Secret>, expected: &[&str]) {
    within(async {
        loop {
            let mut names: Vec<String> = store.state().iter().map(|s| s.name_any()).collect();
            names.sort();
            if names == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_reflector_store_stays_in_sync_with_the_api() {
    let (fake, client) = start().await;
    fake.insert(&secret("a", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let store = start_reflector(secrets.clone());
    wait_for(&store, &["a"]).await;

    secrets
        .create(&PostParams::default(), &secret("b", &[]))
        .await
        .unwrap();
    wait_for(&store, &["a", "b"]).await;
    secrets
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"v": "2"}}})),
        )
        .await
        .unwrap();
    within(async {
        loop {
            let b = store.state().into_iter().find(|s| s.name_any() == "b");
            if b.is_some_and(|b| b.labels().get("v").is_some_and(|v| v == "2")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    secrets.delete("a", &DeleteParams::default()).await.unwrap();
    wait_for(&store, &["b"]).await;
}

// ---------------------------------------------------------------------------------------------
// Discovery and events
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn kube_discovery_finds_the_core_and_crd_groups() {
    let (_fake, client) = start().await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "33")
    );

    let discovery = kube::Discovery::new(client).run().await.unwrap();
    assert!(discovery.has_group("secrets-store.csi.x-k8s.io"));
    assert!(discovery.has_group("events.k8s.io"));
    let group = discovery
        .groups()
        .find(|g| g.name() == "secrets-store.csi.x-k8s.io")
        .unwrap();
    assert_eq!(group.preferred_version_or_latest(), "v1");
    let kinds: Vec<String> = group
        .recommended_resources()
        .into_iter()
        .map(|(r, _)| r.kind)
        .collect();
    assert!(
        kinds.contains(&"SecretProviderClassPodStatus".to_owned()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn the_runtime_event_recorder_publishes_events_k8s_io_events() {
    let (fake, client) = start().await;
    let web: Pod = serde_json::from_value(fake.insert(&pod("web-0", "node-1")).unwrap()).unwrap();
    let recorder = kube::runtime::events::Recorder::new(client, "keyvol".into());
    let event = kube::runtime::events::Event {
        type_: kube::runtime::events::EventType::Warning,
        reason: "FailedMount".into(),
        note: Some("vault unreachable".into()),
        action: "Mount".into(),
        secondary: None,
    };
    recorder
        .publish(&event, &web.object_ref(&()))
        .await
        .unwrap();
    recorder
        .publish(&event, &web.object_ref(&()))
        .await
        .unwrap();

    let events = fake
        .list::<k8s_openapi::api::events::v1::Event>(Some(NS))
        .unwrap();
    assert_eq!(events.len(), 1, "the second publish patches the series");
    assert_eq!(events[0].reason.as_deref(), Some("FailedMount"));
    assert!(events[0].series.is_some());
}

// ---------------------------------------------------------------------------------------------
// Faults and counters
// ---------------------------------------------------------------------------------------------

/// A client that reports 429/503/504 at once instead of retrying them for minutes.
fn client_without_retries(fake: &FakeKube) -> kube::Client {
    let mut config = fake.config().unwrap();
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn an_unavailable_api_answers_503_until_the_fault_is_cleared() {
    let fake = FakeKube::start().await.unwrap();
    fake.insert(&secret("db", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client_without_retries(&fake), NS);
    fake.set_fault(Fault::Unavailable);
    assert_eq!(
        code(secrets.get("db").await),
        (503, "ServiceUnavailable".into())
    );
    fake.set_fault(Fault::None);
    secrets.get("db").await.unwrap();
}

#[tokio::test]
async fn kube_clients_retry_a_transient_503_on_their_own() {
    let (fake, client) = start().await;
    fake.insert(&secret("db", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    fake.fail_requests(Verb::Get, "secrets", 503, 2);
    secrets.get("db").await.unwrap();
    assert_eq!(fake.requests(Verb::Get, "secrets"), 3);
}

#[tokio::test]
async fn a_disconnected_api_is_unreachable_until_the_fault_is_cleared() {
    let (fake, client) = start().await;
    fake.insert(&secret("db", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    secrets.get("db").await.unwrap(); // a pooled connection now exists
    fake.set_fault(Fault::Disconnect);
    let err = secrets.get("db").await.unwrap_err();
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "a transport error, not a Status: {err:?}"
    );
    fake.set_fault(Fault::None);
    secrets.get("db").await.unwrap();
}

#[tokio::test]
async fn latency_and_hang_faults_slow_and_hold_requests() {
    let (fake, client) = start().await;
    fake.insert(&secret("db", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, NS);

    fake.set_fault(Fault::Latency(Duration::from_millis(300)));
    let started = tokio::time::Instant::now();
    secrets.get("db").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));

    fake.set_fault(Fault::Hang);
    let held = tokio::time::timeout(Duration::from_millis(200), secrets.get("db")).await;
    assert!(held.is_err(), "the request is held");
    let pending = tokio::spawn({
        let secrets = secrets.clone();
        async move { secrets.get("db").await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    fake.set_fault(Fault::None);
    within(pending).await.unwrap().unwrap();
}

#[tokio::test]
async fn injected_failures_hit_only_the_chosen_verb_and_resource_and_run_out() {
    let (fake, client) = start().await;
    fake.insert(&secret("db", &[])).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let accounts: Api<ServiceAccount> = Api::namespaced(client, NS);
    fake.fail_requests(Verb::Get, "secrets", 409, 1);

    assert_eq!(code(accounts.get("x").await).0, 404); // other resource: not affected
    assert_eq!(code(secrets.get("db").await), (409, "Conflict".into()));
    secrets.get("db").await.unwrap(); // used up
}

#[tokio::test]
async fn requests_are_counted_by_verb_and_resource_and_logged() {
    let (fake, client) = start().await;
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    secrets
        .create(&PostParams::default(), &secret("db", &[]))
        .await
        .unwrap();
    secrets.get("db").await.unwrap();
    secrets.get("db").await.unwrap();
    secrets.list(&ListParams::default()).await.unwrap();

    assert_eq!(fake.requests(Verb::Create, "secrets"), 1);
    assert_eq!(fake.requests(Verb::Get, "secrets"), 2);
    assert_eq!(fake.requests(Verb::List, "secrets"), 1);
    assert_eq!(fake.requests(Verb::Get, "pods"), 0);
    let log = fake.request_log();
    assert_eq!(log[1].name.as_deref(), Some("db"));
    assert_eq!(log[1].namespace.as_deref(), Some(NS));
    assert!(log[1].path.starts_with("/api/v1/namespaces/app/secrets/db"));

    fake.clear_requests();
    assert_eq!(fake.requests(Verb::Get, "secrets"), 0);
    assert!(fake.request_log().is_empty());
}

#[tokio::test]
async fn dry_run_is_refused_rather_than_silently_persisted() {
    let (fake, client) = start().await;
    let secrets: Api<Secret> = Api::namespaced(client, NS);
    let pp = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    assert_eq!(code(secrets.create(&pp, &secret("db", &[])).await).0, 400);
    assert!(fake.get::<Secret>(NS, "db").unwrap().is_none());
}
