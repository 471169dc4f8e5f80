//! Checks across the whole set: duplicate objects, and references that
//! cannot resolve within it.
//!
//! A duplicate is an error: two manifests cannot both define one object. A
//! dangling reference is a warning, because the API server accepts it and
//! the dependent object waits (a pod for its ConfigMap, a claim for its
//! StorageClass).

use std::collections::{BTreeSet, HashMap, HashSet};

use driftless_model::k8s_openapi::api::core::v1 as core;
use driftless_model::{Kind, Object, ObjectRef};

use crate::pipeline::Checked;
use crate::{Issues, Ptr};

/// Namespaces every cluster has without a manifest.
const BUILTIN_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// What the set declares, for resolving references.
struct Declared {
    objects: HashSet<ObjectRef>,
    /// Keys of each ConfigMap and Secret.
    keys: HashMap<ObjectRef, BTreeSet<String>>,
    /// Port names and whether the service is headless.
    services: HashMap<ObjectRef, (Vec<String>, bool)>,
}

pub(crate) fn check(items: &mut [Checked]) {
    duplicates(items);
    let declared = declared(items);
    for item in items.iter_mut() {
        if let Some(object) = &item.object {
            references(object, &declared, &mut item.issues);
        }
    }
}

fn duplicates(items: &mut [Checked]) {
    // Positions cost a parse of the file, so the first declaration is
    // located only when a duplicate turns up.
    let mut first: HashMap<ObjectRef, driftless_manifest::Origin> = HashMap::new();
    for item in items.iter_mut() {
        let Some(object_ref) = &item.object_ref else { continue };
        match first.get(object_ref) {
            Some(original) => {
                let location = format!("{}:{}", original.file(), original.position("/metadata/name").line);
                item.issues.error(&Ptr::root().key("metadata").key("name"), format!("duplicate object: {object_ref} is also declared at {location}"));
            }
            None => {
                first.insert(object_ref.clone(), item.origin.clone());
            }
        }
    }
}

fn declared(items: &[Checked]) -> Declared {
    let mut declared = Declared { objects: HashSet::new(), keys: HashMap::new(), services: HashMap::new() };
    for item in items {
        let (Some(object_ref), Some(object)) = (&item.object_ref, &item.object) else { continue };
        declared.objects.insert(object_ref.clone());
        let keys: Option<BTreeSet<String>> = match object {
            Object::ConfigMap(cm) => Some(cm.data.iter().flat_map(|d| d.keys()).chain(cm.binary_data.iter().flat_map(|d| d.keys())).cloned().collect()),
            Object::Secret(s) => Some(s.data.iter().flat_map(|d| d.keys()).chain(s.string_data.iter().flat_map(|d| d.keys())).cloned().collect()),
            _ => None,
        };
        if let Some(keys) = keys {
            declared.keys.insert(object_ref.clone(), keys);
        }
        if let Object::Service(service) = object {
            let spec = service.spec.as_ref();
            let ports = spec.iter().flat_map(|s| s.ports.iter().flatten()).filter_map(|p| p.name.clone()).collect();
            let headless = spec.and_then(|s| s.cluster_ip.as_deref()) == Some("None");
            declared.services.insert(object_ref.clone(), (ports, headless));
        }
    }
    declared
}

fn references(object: &Object, declared: &Declared, issues: &mut Issues) {
    let object_ref = object.object_ref();
    let namespace = object_ref.namespace.as_deref().unwrap_or_default();
    if let Some(ns) = &object_ref.namespace {
        let declared_ns = declared.objects.contains(&ObjectRef::new(Kind::Namespace, None, ns.as_str()));
        if !declared_ns && !BUILTIN_NAMESPACES.contains(&ns.as_str()) {
            issues.warn(
                &Ptr::root().key("metadata").key("namespace"),
                format!("Namespace {ns:?} is not declared in these manifests: the object cannot be created until it exists"),
            );
        }
    }
    let in_ns = |kind: Kind, name: &str| ObjectRef::new(kind, Some(namespace), name);
    let spec = Ptr::root().key("spec");
    match object {
        Object::Pod(pod) => {
            if let Some(s) = &pod.spec {
                pod_references(s, &spec, namespace, declared, issues);
            }
        }
        Object::ReplicationController(rc) => {
            if let Some(s) = rc.spec.as_ref().and_then(|s| s.template.as_ref()).and_then(|t| t.spec.as_ref()) {
                pod_references(s, &spec.key("template").key("spec"), namespace, declared, issues);
            }
        }
        Object::ReplicaSet(rs) => {
            if let Some(s) = rs.spec.as_ref().and_then(|s| s.template.as_ref()).and_then(|t| t.spec.as_ref()) {
                pod_references(s, &spec.key("template").key("spec"), namespace, declared, issues);
            }
        }
        Object::Deployment(d) => {
            if let Some(s) = d.spec.as_ref().and_then(|s| s.template.spec.as_ref()) {
                pod_references(s, &spec.key("template").key("spec"), namespace, declared, issues);
            }
        }
        Object::StatefulSet(sts) => {
            let Some(sts_spec) = &sts.spec else { return };
            if let Some(s) = &sts_spec.template.spec {
                pod_references(s, &spec.key("template").key("spec"), namespace, declared, issues);
            }
            if let Some(service) = sts_spec.service_name.as_deref().filter(|s| !s.is_empty()) {
                let at = spec.key("serviceName");
                match declared.services.get(&in_ns(Kind::Service, service)) {
                    None => issues.warn(&at, format!("Service {service:?} is not declared in these manifests: pods get no per-pod DNS names until it exists")),
                    Some((_, false)) => issues.warn(&at, format!("Service {service:?} is not headless (clusterIP: None): pods get no per-pod DNS names")),
                    Some(_) => {}
                }
            }
            for (i, claim) in sts_spec.volume_claim_templates.iter().flatten().enumerate() {
                if let Some(s) = &claim.spec {
                    class_reference(s.storage_class_name.as_deref(), &spec.key("volumeClaimTemplates").idx(i).key("spec"), declared, issues);
                }
            }
        }
        Object::PersistentVolumeClaim(pvc) => {
            if let Some(s) = &pvc.spec {
                class_reference(s.storage_class_name.as_deref(), &spec, declared, issues);
            }
        }
        Object::PersistentVolume(pv) => {
            if let Some(s) = &pv.spec {
                class_reference(s.storage_class_name.as_deref(), &spec, declared, issues);
            }
        }
        Object::HorizontalPodAutoscaler(hpa) => {
            let Some(s) = &hpa.spec else { return };
            let target = &s.scale_target_ref;
            let kind = Kind::ALL.iter().find(|k| k.name() == target.kind);
            let scalable = [Kind::Deployment, Kind::StatefulSet, Kind::ReplicaSet, Kind::ReplicationController];
            match kind {
                Some(kind) if scalable.contains(kind) => {
                    if !declared.objects.contains(&in_ns(*kind, &target.name)) {
                        issues.warn(&spec.key("scaleTargetRef"), format!("{} {:?} is not declared in these manifests", target.kind, target.name));
                    }
                }
                // Any kind with a scale subresource may be a target; Driftless
                // scales only these four.
                _ => issues.warn(
                    &spec.key("scaleTargetRef").key("kind"),
                    format!("Driftless does not scale {:?}: it scales Deployments, StatefulSets, ReplicaSets and ReplicationControllers", target.kind),
                ),
            }
        }
        Object::Ingress(ingress) => {
            let Some(s) = &ingress.spec else { return };
            let mut backends = Vec::new();
            if let Some(b) = &s.default_backend {
                backends.push((b, spec.key("defaultBackend")));
            }
            for (i, rule) in s.rules.iter().flatten().enumerate() {
                for (j, path) in rule.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
                    backends.push((&path.backend, spec.key("rules").idx(i).key("http").key("paths").idx(j).key("backend")));
                }
            }
            for (backend, at) in backends {
                let Some(service) = &backend.service else { continue };
                let at = at.key("service");
                match declared.services.get(&in_ns(Kind::Service, &service.name)) {
                    None => issues.warn(&at.key("name"), format!("Service {:?} is not declared in these manifests: requests will get 503", service.name)),
                    Some((ports, _)) => {
                        if let Some(name) = service.port.as_ref().and_then(|p| p.name.as_ref())
                            && !ports.contains(name)
                        {
                            issues.warn(&at.key("port").key("name"), format!("Service {:?} has no port named {name:?}", service.name));
                        }
                    }
                }
            }
            for (i, tls) in s.tls.iter().flatten().enumerate() {
                if let Some(secret) = &tls.secret_name
                    && !declared.objects.contains(&in_ns(Kind::Secret, secret))
                {
                    issues.warn(
                        &spec.key("tls").idx(i).key("secretName"),
                        format!("Secret {secret:?} is not declared in these manifests: TLS for these hosts will fail"),
                    );
                }
            }
        }
        _ => {}
    }
}

fn class_reference(class: Option<&str>, at: &Ptr, declared: &Declared, issues: &mut Issues) {
    if let Some(class) = class.filter(|c| !c.is_empty())
        && !declared.objects.contains(&ObjectRef::new(Kind::StorageClass, None, class))
    {
        issues.warn(&at.key("storageClassName"), format!("StorageClass {class:?} is not declared in these manifests: the claim stays Pending until it exists"));
    }
}

fn pod_references(spec: &core::PodSpec, at: &Ptr, namespace: &str, declared: &Declared, issues: &mut Issues) {
    let mut check = |kind: Kind, name: &str, key: Option<&str>, optional: Option<bool>, at: &Ptr| {
        if optional == Some(true) || name.is_empty() {
            return;
        }
        let target = ObjectRef::new(kind, Some(namespace), name);
        match (declared.keys.get(&target), key) {
            (None, _) if !declared.objects.contains(&target) => {
                issues.warn(at, format!("{kind} {name:?} is not declared in these manifests: the pod will not start until it exists"))
            }
            (Some(keys), Some(key)) if !keys.contains(key) => issues.warn(at, format!("{kind} {name:?} has no key {key:?}: the container will not start")),
            _ => {}
        }
    };
    for (i, volume) in spec.volumes.iter().flatten().enumerate() {
        let at = at.key("volumes").idx(i);
        if let Some(cm) = &volume.config_map {
            check(Kind::ConfigMap, &cm.name, None, cm.optional, &at.key("configMap").key("name"));
            for (j, item) in cm.items.iter().flatten().enumerate() {
                check(Kind::ConfigMap, &cm.name, Some(&item.key), cm.optional, &at.key("configMap").key("items").idx(j).key("key"));
            }
        }
        if let Some(secret) = &volume.secret {
            let name = secret.secret_name.as_deref().unwrap_or_default();
            check(Kind::Secret, name, None, secret.optional, &at.key("secret").key("secretName"));
            for (j, item) in secret.items.iter().flatten().enumerate() {
                check(Kind::Secret, name, Some(&item.key), secret.optional, &at.key("secret").key("items").idx(j).key("key"));
            }
        }
        if let Some(claim) = &volume.persistent_volume_claim {
            check(Kind::PersistentVolumeClaim, &claim.claim_name, None, None, &at.key("persistentVolumeClaim").key("claimName"));
        }
        for (k, source) in volume.projected.iter().flat_map(|p| p.sources.iter().flatten()).enumerate() {
            let at = at.key("projected").key("sources").idx(k);
            let refs = [
                (Kind::ConfigMap, "configMap", source.config_map.as_ref().map(|c| (&c.name, c.items.as_deref(), c.optional))),
                (Kind::Secret, "secret", source.secret.as_ref().map(|s| (&s.name, s.items.as_deref(), s.optional))),
            ];
            for (kind, field, reference) in refs {
                let Some((name, items, optional)) = reference else { continue };
                check(kind, name, None, optional, &at.key(field).key("name"));
                for (j, item) in items.unwrap_or_default().iter().enumerate() {
                    check(kind, name, Some(&item.key), optional, &at.key(field).key("items").idx(j).key("key"));
                }
            }
        }
    }
    let lists = [("initContainers", spec.init_containers.as_deref().unwrap_or_default()), ("containers", &spec.containers)];
    for (list, containers) in lists {
        for (i, container) in containers.iter().enumerate() {
            let at = at.key(list).idx(i);
            for (j, var) in container.env.iter().flatten().enumerate() {
                let Some(from) = &var.value_from else { continue };
                let at = at.key("env").idx(j).key("valueFrom");
                if let Some(r) = &from.config_map_key_ref {
                    check(Kind::ConfigMap, &r.name, Some(&r.key), r.optional, &at.key("configMapKeyRef"));
                }
                if let Some(r) = &from.secret_key_ref {
                    check(Kind::Secret, &r.name, Some(&r.key), r.optional, &at.key("secretKeyRef"));
                }
            }
            for (j, from) in container.env_from.iter().flatten().enumerate() {
                let at = at.key("envFrom").idx(j);
                if let Some(r) = &from.config_map_ref {
                    check(Kind::ConfigMap, &r.name, None, r.optional, &at.key("configMapRef"));
                }
                if let Some(r) = &from.secret_ref {
                    check(Kind::Secret, &r.name, None, r.optional, &at.key("secretRef"));
                }
            }
        }
    }
}
