//! Device shadows with AWS IoT's semantics (classic, unnamed shadow per thing).
//!
//! Topics (relative to `$fogchain/things/{thing}/shadow/`): `get`, `update`, `delete`, each
//! answered on `.../accepted` or `.../rejected`; `update/delta` carries desired state that differs
//! from the reported state; `update/documents` the previous and current documents. Documents:
//! `{"state": {"desired", "reported", "delta"}, "version", "timestamp", "clientToken"}`. An update
//! merges (a `null` value deletes a key, `"desired": null` clears it), increments `version`, and
//! is refused with 409 "Version conflict" when it names a version other than the current one.
//! Shadows are kept as one JSON file per thing, written atomically (tmp + rename + fsync).
//! Reference: AWS IoT developer guide, "Device Shadow service documents" and "MQTT topics".

use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

/// A stored shadow.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Doc {
    desired: Map<String, Value>,
    reported: Map<String, Value>,
    version: u64,
    timestamp: u64,
}

/// A refused request: published on `.../rejected` as `{"code", "message", "timestamp", "clientToken"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP-like code (400, 404, 409, 413).
    pub code: u16,
    /// Why.
    pub message: String,
}

/// What an accepted update publishes.
#[derive(Debug, Clone)]
pub struct UpdateOutcome {
    /// `update/accepted`.
    pub accepted: Value,
    /// `update/documents`.
    pub documents: Value,
    /// `update/delta`, when the desired state differs from the reported one.
    pub delta: Option<Value>,
}

/// All shadows.
#[derive(Debug)]
pub struct Shadows {
    dir: PathBuf,
    docs: Mutex<HashMap<String, Doc>>,
    /// Largest update request and largest stored state (`desired` + `reported` as JSON), bytes.
    max_bytes: usize,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn reject(code: u16, message: impl Into<String>) -> Rejection {
    Rejection { code, message: message.into() }
}

impl Shadows {
    /// Loads the shadows stored in `dir`; requests and documents are capped at `max_bytes`
    /// (`[limits] shadow-max-bytes`).
    pub fn open(dir: &Path, max_bytes: usize) -> crate::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut docs = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Some(thing) = path.file_stem().and_then(|s| s.to_str()).map(str::to_string) else { continue };
            let doc: Doc = serde_json::from_slice(&std::fs::read(&path)?).map_err(|e| {
                crate::error::ProxyError::Corrupt { path: path.clone(), reason: e.to_string() }
            })?;
            docs.insert(thing, doc);
        }
        Ok(Self { dir: dir.to_path_buf(), docs: Mutex::new(docs), max_bytes })
    }

    fn persist(&self, thing: &str, doc: Option<&Doc>) -> Result<(), Rejection> {
        let path = self.dir.join(format!("{thing}.json"));
        let io = |e: std::io::Error| reject(500, format!("storing the shadow: {e}"));
        match doc {
            Some(doc) => {
                let tmp = path.with_extension("json.tmp");
                let mut f = std::fs::File::create(&tmp).map_err(io)?;
                std::io::Write::write_all(&mut f, &serde_json::to_vec(doc).expect("json")).map_err(io)?;
                f.sync_all().map_err(io)?;
                std::fs::rename(&tmp, &path).map_err(io)?;
            }
            None => match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            },
        }
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// `get`: the whole document.
    pub fn get(&self, thing: &str, client_token: Option<&Value>) -> Result<Value, Rejection> {
        let docs = self.docs.lock();
        let doc =
            docs.get(thing).ok_or_else(|| reject(404, format!("No shadow exists with name: '{thing}'")))?;
        let mut out = document(doc);
        with_token(&mut out, client_token);
        Ok(out)
    }

    /// `delete`: removes the shadow.
    pub fn delete(&self, thing: &str, client_token: Option<&Value>) -> Result<Value, Rejection> {
        let mut docs = self.docs.lock();
        let doc =
            docs.get(thing).ok_or_else(|| reject(404, format!("No shadow exists with name: '{thing}'")))?;
        let version = doc.version;
        self.persist(thing, None)?;
        docs.remove(thing);
        let mut out = json!({"version": version, "timestamp": now()});
        with_token(&mut out, client_token);
        Ok(out)
    }

    /// `update`: merges `request` (bytes of the MQTT payload) into the shadow.
    pub fn update(&self, thing: &str, request: &[u8]) -> Result<UpdateOutcome, (Rejection, Option<Value>)> {
        if request.len() > self.max_bytes {
            return Err((reject(413, "The payload exceeds the maximum size allowed"), None));
        }
        let request: Value = serde_json::from_slice(request)
            .map_err(|_| (reject(400, "Payload contains invalid json"), None))?;
        let token = request.get("clientToken").cloned();
        let fail = |r: Rejection| (r, token.clone());
        let state = request.get("state").ok_or_else(|| fail(reject(400, "Missing required node: state")))?;
        let state = state.as_object().ok_or_else(|| fail(reject(400, "State node must be an object")))?;
        for key in state.keys() {
            if key != "desired" && key != "reported" {
                return Err(fail(reject(400, format!("State contains an invalid node: '{key}'"))));
            }
        }
        let mut docs = self.docs.lock();
        let previous = docs.get(thing).cloned();
        let mut doc = previous.clone().unwrap_or_default();
        if let Some(v) = request.get("version") {
            let v = v.as_u64().ok_or_else(|| fail(reject(400, "Invalid version")))?;
            if v != doc.version {
                return Err(fail(reject(409, "Version conflict")));
            }
        }
        for (section, target) in [("desired", &mut doc.desired), ("reported", &mut doc.reported)] {
            match state.get(section) {
                None => {}
                Some(Value::Null) => target.clear(),
                Some(Value::Object(patch)) => merge(target, patch),
                Some(_) => {
                    return Err(fail(reject(400, format!("{section} node must be an object or null"))))
                }
            }
        }
        let size = |m: &Map<String, Value>| serde_json::to_vec(m).map_or(usize::MAX, |v| v.len());
        if size(&doc.desired).saturating_add(size(&doc.reported)) > self.max_bytes {
            return Err(fail(reject(413, "The shadow document exceeds the maximum size allowed")));
        }
        doc.version = doc.version.saturating_add(1);
        doc.timestamp = now();
        self.persist(thing, Some(&doc)).map_err(fail)?;
        docs.insert(thing.to_string(), doc.clone());
        drop(docs);

        let mut accepted = json!({"state": Value::Object(state.clone()), "version": doc.version, "timestamp": doc.timestamp});
        with_token(&mut accepted, token.as_ref());
        let mut documents = json!({
            "previous": previous.as_ref().map(document).unwrap_or(Value::Null),
            "current": document(&doc),
            "timestamp": doc.timestamp,
        });
        with_token(&mut documents, token.as_ref());
        let delta = match (state.contains_key("desired"), diff(&doc.desired, &doc.reported)) {
            (true, Some(delta)) => {
                let mut d = json!({"state": Value::Object(delta), "version": doc.version, "timestamp": doc.timestamp});
                with_token(&mut d, token.as_ref());
                Some(d)
            }
            _ => None,
        };
        Ok(UpdateOutcome { accepted, documents, delta })
    }
}

/// The rejection payload.
pub fn rejection_json(r: &Rejection, client_token: Option<&Value>) -> Value {
    let mut v = json!({"code": r.code, "message": r.message, "timestamp": now()});
    with_token(&mut v, client_token);
    v
}

fn with_token(v: &mut Value, token: Option<&Value>) {
    if let (Some(t), Some(obj)) = (token, v.as_object_mut()) {
        obj.insert("clientToken".into(), t.clone());
    }
}

fn document(doc: &Doc) -> Value {
    let mut state = Map::new();
    if !doc.desired.is_empty() {
        state.insert("desired".into(), Value::Object(doc.desired.clone()));
    }
    if !doc.reported.is_empty() {
        state.insert("reported".into(), Value::Object(doc.reported.clone()));
    }
    if let Some(delta) = diff(&doc.desired, &doc.reported) {
        state.insert("delta".into(), Value::Object(delta));
    }
    json!({"state": state, "version": doc.version, "timestamp": doc.timestamp})
}

/// Merges `patch` into `target`: objects recursively, `null` deletes.
fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(p) => {
                let entry = target.entry(k.clone()).or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                merge(entry.as_object_mut().expect("object"), p);
                if entry.as_object().is_some_and(|o| o.is_empty()) {
                    target.remove(k);
                }
            }
            other => {
                target.insert(k.clone(), other.clone());
            }
        }
    }
}

/// The desired values that differ from the reported ones (recursively), or None.
fn diff(desired: &Map<String, Value>, reported: &Map<String, Value>) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    for (k, d) in desired {
        match (d, reported.get(k)) {
            (Value::Object(dobj), Some(Value::Object(robj))) => {
                if let Some(sub) = diff(dobj, robj) {
                    out.insert(k.clone(), Value::Object(sub));
                }
            }
            (d, Some(r)) if d == r => {}
            (d, _) => {
                out.insert(k.clone(), d.clone());
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_reported_delta_versions_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let s = Shadows::open(dir.path(), 8192).unwrap();
        assert_eq!(s.get("locker-1", None).unwrap_err().code, 404);
        let out =
            s.update("locker-1", br#"{"state":{"desired":{"door":"open"}},"clientToken":"t1"}"#).unwrap();
        assert_eq!(out.accepted["version"], 1);
        assert_eq!(out.accepted["clientToken"], "t1");
        assert_eq!(out.delta.unwrap()["state"], json!({"door": "open"}));
        assert_eq!(out.documents["previous"], Value::Null);
        // a stale version is refused
        let (r, token) = s
            .update("locker-1", br#"{"state":{"reported":{"door":"open"}},"version":0,"clientToken":"t2"}"#)
            .unwrap_err();
        assert_eq!((r.code, r.message.as_str(), token), (409, "Version conflict", Some(json!("t2"))));
        let out = s
            .update("locker-1", br#"{"state":{"reported":{"door":"open","battery":90}},"version":1}"#)
            .unwrap();
        assert!(out.delta.is_none(), "reported updates publish no delta");
        assert_eq!(out.documents["current"]["state"]["reported"]["battery"], 90);
        // persisted
        let s2 = Shadows::open(dir.path(), 8192).unwrap();
        let doc = s2.get("locker-1", None).unwrap();
        assert_eq!(doc["version"], 2);
        assert!(doc["state"].get("delta").is_none());
        // null deletes; bad input is rejected with AWS's wording
        s2.update("locker-1", br#"{"state":{"reported":{"battery":null}}}"#).unwrap();
        assert!(s2.get("locker-1", None).unwrap()["state"]["reported"].get("battery").is_none());
        assert_eq!(s2.update("locker-1", b"{}").unwrap_err().0.message, "Missing required node: state");
        assert_eq!(s2.update("locker-1", b"nope").unwrap_err().0.code, 400);
        s2.delete("locker-1", None).unwrap();
        assert_eq!(Shadows::open(dir.path(), 8192).unwrap().get("locker-1", None).unwrap_err().code, 404);
    }

    #[test]
    fn documents_cannot_grow_past_the_cap_by_small_updates() {
        let dir = tempfile::tempdir().unwrap();
        let s = Shadows::open(dir.path(), 256).unwrap();
        let big = "x".repeat(100);
        s.update("t", format!(r#"{{"state":{{"reported":{{"a":"{big}"}}}}}}"#).as_bytes()).unwrap();
        s.update("t", format!(r#"{{"state":{{"desired":{{"b":"{big}"}}}}}}"#).as_bytes()).unwrap();
        let (r, _) =
            s.update("t", format!(r#"{{"state":{{"reported":{{"c":"{big}"}}}}}}"#).as_bytes()).unwrap_err();
        assert_eq!(
            (r.code, r.message.as_str()),
            (413, "The shadow document exceeds the maximum size allowed")
        );
        assert_eq!(s.get("t", None).unwrap()["version"], 2, "the refused update changed nothing");
        let too_big = format!(r#"{{"state":{{"reported":{{"c":"{}"}}}}}}"#, "y".repeat(300));
        assert_eq!(s.update("t", too_big.as_bytes()).unwrap_err().0.code, 413);
    }
}
