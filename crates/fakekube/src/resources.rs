//! The resources the fake serves: [`ResourceDef`] describes one (group, versions, plural, kind,
//! scope, subresources, delete response, field selectors) and [`Registry`] looks them up by
//! URL path or by `apiVersion` + `kind`. [`ResourceDef::defaults`] is the set keyvol needs.

/// One resource type the fake serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group; empty for the core group (`/api/v1`).
    pub group: &'static str,
    /// Served versions. All share one storage; objects are stored under the first (the
    /// storage version) and served under whichever version the request names, with only
    /// `apiVersion` rewritten (no schema conversion).
    pub versions: &'static [&'static str],
    /// Plural resource name, as in URLs.
    pub plural: &'static str,
    /// Singular name, for discovery.
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Whether `<plural>/status` is a separate subresource. With it, writes to the main
    /// resource keep the stored `.status` and writes to `/status` change only `.status`;
    /// without it `/status` paths are 404 and `.status` is ordinary data.
    pub status_subresource: bool,
    /// Whether DELETE answers with the deleted object (as pods and service accounts do) or
    /// with a `Status` of `Success` (as most resources do).
    pub delete_returns_object: bool,
    /// Field selector labels the resource supports besides `metadata.name` and
    /// `metadata.namespace`, each with the JSON path it reads.
    pub field_labels: &'static [(&'static str, &'static str)],
    /// Short names, for discovery.
    pub short_names: &'static [&'static str],
}

/// Field labels every resource supports.
const META_FIELDS: &[(&str, &str)] = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
];

/// Group of the Secrets Store CSI Driver CRDs.
pub const SECRETS_STORE_GROUP: &str = "secrets-store.csi.x-k8s.io";

impl ResourceDef {
    /// Core v1 pods (graceful deletion is not modelled: a delete removes the pod at once).
    pub const PODS: Self = Self {
        group: "",
        versions: &["v1"],
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        status_subresource: true,
        delete_returns_object: true,
        field_labels: &[
            ("spec.nodeName", "spec.nodeName"),
            ("spec.restartPolicy", "spec.restartPolicy"),
            ("spec.schedulerName", "spec.schedulerName"),
            ("spec.serviceAccountName", "spec.serviceAccountName"),
            ("spec.hostNetwork", "spec.hostNetwork"),
            ("status.phase", "status.phase"),
            ("status.podIP", "status.podIP"),
            ("status.nominatedNodeName", "status.nominatedNodeName"),
        ],
        short_names: &["po"],
    };

    /// Core v1 secrets (`stringData` is folded into `data` on every write, as upstream).
    pub const SECRETS: Self = Self {
        group: "",
        versions: &["v1"],
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        status_subresource: false,
        delete_returns_object: false,
        field_labels: &[("type", "type")],
        short_names: &[],
    };

    /// Core v1 events.
    pub const CORE_EVENTS: Self = Self {
        group: "",
        versions: &["v1"],
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        status_subresource: false,
        delete_returns_object: false,
        field_labels: &[
            ("involvedObject.kind", "involvedObject.kind"),
            ("involvedObject.namespace", "involvedObject.namespace"),
            ("involvedObject.name", "involvedObject.name"),
            ("involvedObject.uid", "involvedObject.uid"),
            ("involvedObject.apiVersion", "involvedObject.apiVersion"),
            (
                "involvedObject.resourceVersion",
                "involvedObject.resourceVersion",
            ),
            ("involvedObject.fieldPath", "involvedObject.fieldPath"),
            ("reason", "reason"),
            ("reportingComponent", "reportingComponent"),
            ("source", "source.component"),
            ("type", "type"),
        ],
        short_names: &["ev"],
    };

    /// events.k8s.io/v1 events. Upstream these share storage with core events and are
    /// converted; here the two are stored separately. Field labels are the upstream ones,
    /// mapped onto the events.k8s.io field names.
    pub const EVENTS: Self = Self {
        group: "events.k8s.io",
        versions: &["v1"],
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        status_subresource: false,
        delete_returns_object: false,
        field_labels: &[
            ("involvedObject.kind", "regarding.kind"),
            ("involvedObject.namespace", "regarding.namespace"),
            ("involvedObject.name", "regarding.name"),
            ("involvedObject.uid", "regarding.uid"),
            ("involvedObject.apiVersion", "regarding.apiVersion"),
            (
                "involvedObject.resourceVersion",
                "regarding.resourceVersion",
            ),
            ("involvedObject.fieldPath", "regarding.fieldPath"),
            ("reason", "reason"),
            ("reportingComponent", "reportingController"),
            ("source", "deprecatedSource.component"),
            ("type", "type"),
        ],
        short_names: &["ev"],
    };

    /// Core v1 service accounts.
    pub const SERVICE_ACCOUNTS: Self = Self {
        group: "",
        versions: &["v1"],
        plural: "serviceaccounts",
        singular: "serviceaccount",
        kind: "ServiceAccount",
        namespaced: true,
        status_subresource: false,
        delete_returns_object: true,
        field_labels: &[],
        short_names: &["sa"],
    };

    /// SecretProviderClass, served as v1 (storage) and v1alpha1. Like the upstream CRD it has
    /// no status subresource.
    pub const SECRET_PROVIDER_CLASSES: Self = Self {
        group: SECRETS_STORE_GROUP,
        versions: &["v1", "v1alpha1"],
        plural: "secretproviderclasses",
        singular: "secretproviderclass",
        kind: "SecretProviderClass",
        namespaced: true,
        status_subresource: false,
        delete_returns_object: false,
        field_labels: &[],
        short_names: &[],
    };

    /// SecretProviderClassPodStatus, served as v1 (storage) and v1alpha1. Like the upstream
    /// CRD it has no status subresource: `.status` is written through the main resource.
    pub const SECRET_PROVIDER_CLASS_POD_STATUSES: Self = Self {
        group: SECRETS_STORE_GROUP,
        versions: &["v1", "v1alpha1"],
        plural: "secretproviderclasspodstatuses",
        singular: "secretproviderclasspodstatus",
        kind: "SecretProviderClassPodStatus",
        namespaced: true,
        status_subresource: false,
        delete_returns_object: false,
        field_labels: &[],
        short_names: &[],
    };

    /// The resources served unless the builder says otherwise.
    pub fn defaults() -> Vec<Self> {
        vec![
            Self::PODS,
            Self::SECRETS,
            Self::CORE_EVENTS,
            Self::SERVICE_ACCOUNTS,
            Self::EVENTS,
            Self::SECRET_PROVIDER_CLASSES,
            Self::SECRET_PROVIDER_CLASS_POD_STATUSES,
        ]
    }

    /// This definition with the status subresource switched on or off.
    pub const fn with_status_subresource(mut self, enabled: bool) -> Self {
        self.status_subresource = enabled;
        self
    }

    /// The storage version.
    pub fn storage_version(&self) -> &'static str {
        self.versions.first().copied().unwrap_or("v1")
    }

    /// `apiVersion` for a served version: `v1` or `group/v1`.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// Whether `version` is served.
    pub fn serves(&self, version: &str) -> bool {
        self.versions.contains(&version)
    }

    /// All field labels the resource supports, `metadata.*` first.
    pub fn all_field_labels(&self) -> Vec<(&'static str, &'static str)> {
        META_FIELDS
            .iter()
            .chain(self.field_labels.iter())
            .copied()
            .collect()
    }
}

/// Index of a resource in the [`Registry`].
pub type ResId = usize;

/// The served resources.
#[derive(Debug, Clone)]
pub struct Registry {
    defs: Vec<ResourceDef>,
}

impl Registry {
    /// A registry of `defs`; a later definition of the same group and plural replaces an
    /// earlier one.
    pub fn new(defs: Vec<ResourceDef>) -> Self {
        let mut unique: Vec<ResourceDef> = Vec::new();
        for def in defs {
            if let Some(existing) = unique
                .iter_mut()
                .find(|d| d.group == def.group && d.plural == def.plural)
            {
                *existing = def;
            } else {
                unique.push(def);
            }
        }
        Self { defs: unique }
    }

    /// The definition at `id`.
    pub fn def(&self, id: ResId) -> &ResourceDef {
        &self.defs[id]
    }

    /// Every definition with its id.
    pub fn iter(&self) -> impl Iterator<Item = (ResId, &ResourceDef)> {
        self.defs.iter().enumerate()
    }

    /// The resource served at `/api(s)/{group}/{version}/{plural}`.
    pub fn by_path(&self, group: &str, version: &str, plural: &str) -> Option<ResId> {
        self.iter()
            .find(|(_, d)| d.group == group && d.plural == plural && d.serves(version))
            .map(|(id, _)| id)
    }

    /// The resource an object with this `apiVersion` and `kind` belongs to, with the version.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<(ResId, &'static str)> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.iter().find_map(|(id, d)| {
            let version = d.versions.iter().find(|v| **v == version)?;
            (d.group == group && d.kind == kind).then_some((id, *version))
        })
    }

    /// The groups served besides the core group, in registration order, each with its
    /// versions (the storage version first).
    pub fn groups(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        for def in &self.defs {
            if def.group.is_empty() {
                continue;
            }
            let entry = match groups.iter_mut().position(|(g, _)| *g == def.group) {
                Some(i) => &mut groups[i].1,
                None => {
                    groups.push((def.group, Vec::new()));
                    let last = groups.len() - 1;
                    &mut groups[last].1
                }
            };
            for v in def.versions {
                if !entry.contains(v) {
                    entry.push(v);
                }
            }
        }
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_crd_versions_resolve_to_one_storage() {
        let registry = Registry::new(ResourceDef::defaults());
        let v1 = registry.by_path(SECRETS_STORE_GROUP, "v1", "secretproviderclasses");
        let alpha = registry.by_path(SECRETS_STORE_GROUP, "v1alpha1", "secretproviderclasses");
        assert!(v1.is_some());
        assert_eq!(v1, alpha);
        assert_eq!(
            registry.by_path(SECRETS_STORE_GROUP, "v2", "secretproviderclasses"),
            None
        );
    }

    #[test]
    fn core_and_events_group_events_are_different_resources() {
        let registry = Registry::new(ResourceDef::defaults());
        let core = registry.by_kind("v1", "Event").map(|(id, _)| id);
        let group = registry
            .by_kind("events.k8s.io/v1", "Event")
            .map(|(id, _)| id);
        assert!(core.is_some() && group.is_some());
        assert_ne!(core, group);
    }

    #[test]
    fn a_later_definition_replaces_an_earlier_one() {
        let registry = Registry::new(vec![
            ResourceDef::SECRET_PROVIDER_CLASS_POD_STATUSES,
            ResourceDef::SECRET_PROVIDER_CLASS_POD_STATUSES.with_status_subresource(true),
        ]);
        assert_eq!(registry.iter().count(), 1);
        assert!(registry.def(0).status_subresource);
    }
}
